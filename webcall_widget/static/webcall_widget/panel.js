// The panel (docs/widget.md)
import { richText } from "./rich-text.js"

/** @type {H} */
let h

/** @type {Button} */
const button = (classes, children, onClick, attributes) => {
	const element = h(`button.${classes}`, { type: "button", ...attributes }, children)
	element.addEventListener("click", onClick)
	return element
}

/** @type {SetText} */
const setText = (element, text) => {
	if (element.textContent !== text) {
		element.textContent = text
	}
}

/** @type {PanelFactory} */
export const createPanel = ({ config, root, shadow, launcher }, kit, owner) => {
	h = kit.h
	const { icon } = kit
	const { agent } = config
	const s = config.strings.ui
	/** ("mode", "WebAudio"): s.modeWebAudio @param {string} kind @param {string} name */
	const label = (kind, name) => s[kind + name[0].toUpperCase() + name.slice(1)]
	/** @type {Map<string, HTMLElement>} */
	const messageElements = new Map()
	const modes = owner.availableModes()
	const choosing = modes.length > 1
	launcher.setAttribute("aria-controls", "webcall-panel")

	const statusText = h("span.status", { role: "status" }, [s.stateIdle])
	const closeButton = button("icon-button", [icon("M6 6l12 12M18 6L6 18", true)], () => owner.close(), {
		"aria-label": s.closeChat,
	})
	const startView = h("div.start", {}, [
		agent.subtitle && h("p.about", {}, [h("bdi", {}, [agent.subtitle])]),
		agent.greeting && h("p.greeting", {}, [h("bdi", {}, [agent.greeting])]),
		choosing && h("p.choose", { id: "webcall-choose" }, [s.chooseMode]),
		h(
			"div.modes",
			{ role: "group", "aria-labelledby": choosing && "webcall-choose" },
			modes.map((mode) =>
				button("primary-button", [choosing ? label("mode", mode) || mode : s.start], () => owner.start(mode), {
					"data-mode": mode,
				}),
			),
		),
	])
	const transcript = h("ol.transcript", { role: "log", "aria-live": "off", "aria-label": s.transcript, hidden: true })
	const notice = h("div.notice", { role: "alert", hidden: true })
	const announcer = h("div.announcer.sr-only", { "aria-live": "polite", "aria-atomic": "true" })

	const input = h("textarea.input", {
		rows: 1,
		"aria-label": s.messageLabel,
		placeholder: s.messagePlaceholder,
		maxlength: config.maxTextLength,
		enterkeyhint: "send",
		dir: "auto",
	})
	const fitInput = () => {
		input.style.height = "auto"
		input.style.height = `${Math.min(input.scrollHeight, 140)}px`
	}
	const submit = () => {
		const text = input.value.trim()
		if (text && owner.send(text)) {
			input.value = ""
			fitInput()
		}
	}
	input.addEventListener("keydown", (event) => {
		// 229: Safari's keydown that ends an IME composition
		if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
			event.preventDefault()
			submit()
		}
	})
	input.addEventListener("input", fitInput)
	const sendButton = h("button.send", { type: "submit", "aria-label": s.send }, [icon("M4 12l16-8-6 16-2-6-8-2z")])
	const composer = h("form.composer", {}, [input, sendButton])
	composer.addEventListener("submit", (event) => {
		event.preventDefault()
		submit()
	})
	const continueVoiceButton = button("primary-button.continue-voice", [s.continueVoice], () => owner.continueVoice())
	const micButton = button(
		"mic",
		[icon("M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM6 11a6 6 0 0 0 12 0M12 17v4M9 21h6", true)],
		() => owner.toggleMute(),
		{ "aria-pressed": "false", "aria-label": s.mute },
	)
	const meter = h("div.meter", { role: "presentation", title: s.micLevel }, [h("div.meter-fill")])
	const voiceStatus = h("span.voice-status", { "aria-live": "polite" })
	const soundButton = button("secondary-button", [s.soundOn], () => owner.voice?.resume())
	const voiceBar = h("div.voicebar", {}, [continueVoiceButton, micButton, meter, voiceStatus, soundButton])
	const endButton = button("link-button", [s.end], () => owner.end())
	const restartButton = button("secondary-button", [s.restart], () => owner.restart())
	const footer = h("div.footer", {}, [voiceBar, composer, h("div.footer-actions", {}, [endButton, restartButton])])
	const dialog = h(
		"section.panel",
		{ id: "webcall-panel", role: "dialog", "aria-labelledby": "webcall-title", hidden: true },
		[
			h("div.header", {}, [
				agent.avatarUrl && h("img.avatar", { src: agent.avatarUrl, alt: "" }),
				h("div.heading", {}, [
					h("h2.title", { id: "webcall-title" }, [h("bdi", {}, [agent.title])]),
					agent.subtitle && h("p.subtitle", { title: agent.subtitle }, [h("bdi", {}, [agent.subtitle])]),
					statusText,
				]),
				closeButton,
			]),
			h("div.body", {}, [startView, transcript, notice, announcer]),
			footer,
		],
	)
	dialog.addEventListener("keydown", (event) => {
		if (event.key === "Escape") {
			event.stopPropagation()
			owner.close()
		}
	})

	/** @type {Panel} */
	const panel = {
		isOpen: false,
		lastAgentMessageId: "",

		view() {
			const { state, voice, mode } = owner
			const said = messageElements.size > 0
			const over = state === "ended" || state === "error"
			const waiting = owner.voicePending && !voice && state === "live"
			const voiceBar = !over && Boolean(voice || waiting)
			const restart = over && !notice.querySelector("button")
			return {
				over,
				start: state === "idle" && !said,
				transcript: said || (state !== "idle" && !over),
				composer: !over && mode !== "WebAudio",
				typing: (state === "live" || state === "reconnecting") && Boolean(mode) && mode !== "WebAudio",
				voiceBar,
				waiting,
				mic: voiceBar && Boolean(voice?.capturing),
				restart,
				footer: (state !== "idle" || said) && (!over || restart),
			}
		},

		render() {
			const { state, voice } = owner
			const view = this.view()
			root.setAttribute("data-state", state)
			root.setAttribute("data-speaking", String(Boolean(voice?.speaking)))
			setText(statusText, label("state", state === "ending" ? "live" : state))
			startView.hidden = !view.start
			transcript.hidden = !view.transcript
			composer.hidden = !view.composer
			input.disabled = sendButton.disabled = !view.typing
			endButton.hidden = view.over
			restartButton.hidden = !view.restart
			voiceBar.hidden = !view.voiceBar
			continueVoiceButton.hidden = !view.waiting
			micButton.hidden = meter.hidden = !voice?.capturing
			footer.hidden = !view.footer
			let voiceText = ""
			if (voice) {
				micButton.setAttribute("aria-pressed", String(voice.muted))
				micButton.setAttribute("aria-label", voice.muted ? s.unmute : s.mute)
				if (voice.capturing) {
					voiceText = voice.muted
						? s.voiceMuted
						: voice.speaking
							? s.voiceSpeaking
							: state === "live"
								? s.voiceListening
								: s.stateConnecting
				} else if (voice.stream || state === "connecting") {
					voiceText = s.voiceStarting
				} else if (voice.speaking) {
					voiceText = s.voiceSpeaking
				}
			}
			const silent = voice?.late && !voice.closed && voice.context.state !== "running"
			soundButton.hidden = !silent
			if (silent) {
				voiceText = s[voice.resumed ? "noSound" : "soundHeld"]
			}
			setText(voiceStatus, voiceText)
		},

		showLevel(rms) {
			meter.style.setProperty("--level", Math.min(1, Math.sqrt(rms) * 1.8).toFixed(3))
		},

		showNotice(message, actions = []) {
			const buttons = actions.map(([text, handler]) => button("secondary-button", [text], handler))
			notice.replaceChildren(h("p", {}, [message]))
			if (buttons.length) {
				notice.append(h("div.notice-actions", {}, buttons))
			}
			notice.hidden = false
			this.render()
		},

		hideNotice() {
			notice.hidden = true
			notice.replaceChildren()
			this.render()
		},

		show(open, focus = true) {
			if (open === this.isOpen) {
				return
			}
			const hadFocus = shadow.activeElement && dialog.contains(shadow.activeElement)
			this.isOpen = open
			dialog.hidden = !open
			root.setAttribute("data-open", String(open))
			launcher.setAttribute("aria-expanded", String(open))
			if (open && focus) {
				this.focusInside()
			} else if (!open && (hadFocus || shadow.activeElement === null)) {
				launcher.focus()
			}
		},

		focusInside() {
			if (!this.isOpen) {
				return
			}
			const view = this.view()
			let target
			if (view.waiting) {
				target = continueVoiceButton
			} else if (view.typing) {
				target = input
			} else if (view.mic && view.footer) {
				target = micButton
			} else if (!notice.hidden) {
				target = notice.querySelector("button")
			} else if (view.start) {
				target = startView.querySelector("button")
			} else if (view.restart) {
				target = restartButton
			}
			target ||= closeButton
			target.focus()
		},

		showMessage({ id, role, text, final }, { quiet = false, pending = false } = {}) {
			const nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80
			const user = role === "user"
			let item = messageElements.get(id)
			if (!item) {
				item = h(`li.message.message--${user ? "user" : "agent"}`, {}, [
					h("span.sr-only", {}, [h("bdi", {}, [user ? s.you : agent.title]), ": "]),
					h(`${user ? "span" : "div"}.text`, { dir: "auto" }),
				])
				messageElements.set(id, item)
				transcript.append(item)
				this.render()
			}
			const textElement = item.children[1]
			if (user) {
				textElement.textContent = text
			} else {
				textElement.replaceChildren(richText(h, text))
				this.lastAgentMessageId = id
			}
			item.classList.toggle("message--partial", !final)
			if (user) {
				this.mark(id, pending ? "pending" : "")
			} else if (final && !quiet) {
				announcer.textContent = s.agentSays.replace(/%\((\w+)\)s/g, (_, key) =>
					key === "name" ? agent.title : textElement.textContent || "",
				)
			}
			if (nearBottom || user) {
				transcript.scrollTop = transcript.scrollHeight
			}
		},

		showsFinished(id) {
			const item = messageElements.get(id)
			return item !== undefined && !item.classList.contains("message--partial")
		},

		mark(id, mark) {
			const item = messageElements.get(id)
			if (!item) {
				return
			}
			item.classList.remove("message--pending", "message--unsent")
			let status = item.querySelector(".message-status")
			if (mark) {
				item.classList.add(`message--${mark}`)
				status ||= item.appendChild(h("span.message-status"))
				status.textContent = s[mark]
			} else {
				status?.remove()
			}
		},

		clear() {
			messageElements.clear()
			this.lastAgentMessageId = ""
			transcript.replaceChildren()
			this.hideNotice()
		},
	}
	root.append(dialog)
	panel.render()
	return panel
}
