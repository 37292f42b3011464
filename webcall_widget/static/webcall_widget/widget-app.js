// The widget (docs/widget.md)
import { createConnection } from "./connection.js"
import { createPanel } from "./panel.js"
import { createVoice, voiceSupported } from "./voice.js"

/** @type {(shell: WebcallShell, kit: WebcallKit) => Widget} */
export const mount = (shell, kit) => {
	const { config } = shell
	const s = config.strings.ui
	/** @type {Widget} */
	const widget = {
		state: "idle",
		mode: null,
		voice: null,
		voicePending: false,
		get connection() {
			return connection
		},

		availableModes() {
			return config.modes.filter((mode) => mode === "text" || voiceSupported())
		},

		setState(state) {
			if (state === this.state) {
				return
			}
			const previous = this.state
			this.state = state
			panel.render()
			this.emit("state", { state, previous })
		},

		open({ focus = true } = {}) {
			panel.show(true, focus)
			connection.save()
			connection.prepare()
		},

		close() {
			panel.show(false)
			connection.save()
		},

		toggle() {
			if (panel.isOpen) {
				this.close()
			} else {
				this.open()
			}
		},

		async start(mode) {
			if (["connecting", "live", "ending", "reconnecting"].includes(this.state)) {
				return
			}
			const chosen = mode || config.defaultMode
			if (!this.availableModes().includes(chosen)) {
				this.fail("mode_not_allowed")
				return
			}
			this.reset()
			this.mode = chosen
			this.open()
			const voice = chosen !== "text" && this.newVoice()
			if (voice === null) {
				this.fail("audio_failed", { retry: true })
				return
			}
			this.setState("connecting")
			if (voice) {
				const code = await this.startVoice(voice)
				if (voice !== this.voice) {
					voice.close()
					return
				}
				if (code && !this.textInstead(code)) {
					this.voiceFailed(code)
					return
				}
				panel.render()
			}
			connection.create(chosen)
		},

		// in the click (see createVoice); null: no audio here
		newVoice() {
			try {
				this.voice = createVoice(config, {
					onFrame: (pcm) => connection.sendAudio(pcm),
					onLevel: (rms) => panel.showLevel(rms),
					onChange: () => panel.render(),
				})
			} catch {
				this.voice = null
			}
			return this.voice
		},

		async startVoice(voice) {
			const code = await voice.start()
			voice.ready.then((failed) => failed && voice === this.voice && this.voiceFailed(failed))
			return code
		},

		voiceFailed(code) {
			this.releaseVoice()
			connection.isOpen() && connection.end()
			connection.abandon()
			const text = config.modes.includes("text")
			this.fail(code, { retry: true, actions: text ? [[s.textInstead, () => this.start("text")]] : [] })
		},

		textInstead(code) {
			if (this.mode !== "TextAudio") {
				return false
			}
			panel.showNotice(`${this.errorText(code)} ${s.continuingAsText}`, [[s.retry, () => this.retryMicrophone()]])
			this.emitError(code)
			return true
		},

		async retryMicrophone() {
			const voice = this.voice
			if (!voice || voice.capturing || voice.closed) {
				return
			}
			const code = await this.startVoice(voice)
			if (voice !== this.voice) {
				return
			}
			if (code) {
				this.textInstead(code)
			} else {
				panel.hideNotice()
			}
			panel.focusInside()
		},

		toggleMute() {
			if (this.voice) {
				this.voice.setMuted(!this.voice.muted)
				panel.render()
			}
		},

		async continueVoice() {
			if (!panel.view().waiting) {
				return
			}
			const voice = this.newVoice()
			if (!voice) {
				panel.showNotice(this.errorText("audio_failed"))
				return
			}
			this.voicePending = false
			panel.render()
			const code = await this.startVoice(voice)
			if (voice !== this.voice) {
				voice.close()
			} else if (code) {
				if (!this.textInstead(code)) {
					this.voice = null
					this.voicePending = true
					await voice.close()
					panel.showNotice(this.errorText(code))
					this.emitError(code)
				}
				panel.render()
			} else {
				panel.hideNotice()
				panel.focusInside()
			}
		},

		session() {
			return { mode: this.mode, open: panel.isOpen }
		},

		onPending(id, text) {
			panel.showMessage({ id, role: "user", text, final: true }, { pending: true })
		},

		onUnsent(id) {
			panel.mark(id, "unsent")
		},

		onReady(frame) {
			this.mode = frame.mode || this.mode
			const fromPageLoad = this.state === "reconnecting" && !this.voice
			if (frame.resumed && fromPageLoad && frame.mode !== "text") {
				this.voicePending = true
			}
			this.setState("live")
			this.emit("ready", { mode: frame.mode, audio: frame.audio, resumed: Boolean(frame.resumed) })
			if (!frame.resumed || (this.voicePending && panel.isOpen)) {
				panel.focusInside()
			}
		},

		onTranscript(messages) {
			const reconnected = panel.lastAgentMessageId
			for (const message of messages) {
				if (reconnected && !panel.showsFinished(message.id)) {
					this.onMessage(message)
				} else {
					panel.showMessage(message, { quiet: true })
				}
			}
		},

		onMessage(message) {
			panel.showMessage(message)
			const { id, role, text, final } = message
			this.emit("message", { id, role, text, final })
		},

		onRelayError({ code, message, retryAfter }) {
			const text = this.errorText(code, message)
			this.emit("error", { code, message: text, retryAfter })
			if (this.state === "live") {
				panel.showNotice(text)
			}
		},

		onAudio(buffer) {
			this.voice?.play(buffer)
		},

		onInterrupt() {
			if (this.voice?.speaking) {
				panel.mark(panel.lastAgentMessageId, "interrupted")
			}
			this.voice?.interrupt()
			this.emit("interrupt", {})
		},

		onReconnecting() {
			panel.hideNotice()
			this.setState("reconnecting")
		},

		onEnded(notice) {
			this.releaseVoice()
			if (notice) {
				panel.showNotice(this.errorText(notice.code, notice.message))
			} else {
				panel.hideNotice()
			}
			this.setState("ended")
			panel.focusInside()
		},

		onFailed(reason, message, said, starting) {
			if (this.state === "ended") {
				return
			}
			this.releaseVoice()
			if (reason === "taken_over") {
				this.fail(reason, { state: "ended" })
			} else {
				this.fail(reason, { message, said, retry: starting || reason === "restarting" })
			}
		},

		onLost() {
			if (this.state === "ended") {
				return
			}
			this.releaseVoice()
			this.fail("lost_while_away", { state: "ended" })
		},

		onConnectFailed() {
			this.fail("network", { retry: true })
		},

		errorText(code, fallback) {
			const { errors } = config.strings
			return errors[code] || fallback || errors.network
		},

		fail(code, { message, actions = [], retry, state = "error", said } = {}) {
			const text = this.errorText(code, message)
			const mode = this.mode
			if (retry && mode) {
				actions = [[s.retry, () => this.start(mode)], ...actions]
			}
			this.setState(state)
			panel.showNotice(text, actions)
			if (!said) {
				this.emitError(code, text)
			}
			panel.focusInside()
		},

		send(text) {
			if (typeof text !== "string" || !text.trim() || this.mode === "WebAudio" || !connection.canSend()) {
				return false
			}
			if (text.length > config.maxTextLength) {
				panel.showNotice(s.tooLong)
				return false
			}
			if (connection.sendText(text) === "sent") {
				panel.hideNotice()
			}
			return true
		},

		end() {
			const { socket } = connection
			const away = this.state === "reconnecting" // hung up once back
			if (away || connection.phase === "calling" || (!socket && (this.voicePending || this.voice))) {
				away ? connection.end() : connection.abandon()
				this.releaseVoice()
				this.setState("ended")
			} else if (connection.isOpen() || connection.phase === "live") {
				this.setState("ending")
				connection.end()
			} else {
				socket?.close()
			}
		},

		restart() {
			this.reset()
			this.setState("idle")
			panel.focusInside()
		},

		reset() {
			this.releaseVoice()
			connection.reset()
			this.mode = null
			panel.clear()
		},

		releaseVoice() {
			this.voicePending = false
			const voice = this.voice
			if (voice) {
				this.voice = null
				voice.close()
				connection.dropAudio()
				panel.render()
			}
		},

		emitError(code, message) {
			this.emit("error", { code, message: message || this.errorText(code) })
		},

		emit(name, detail) {
			const init = { detail: { agent: shell.slug, call: connection.call, ...detail }, bubbles: true, composed: true }
			shell.host.dispatchEvent(new CustomEvent(`webcall:${name}`, init))
		},
	}
	const connection = createConnection(config, shell.storageKey, widget)
	for (const type of ["pagehide", "pageshow", "offline", "online"]) {
		addEventListener(type, connection)
	}
	const panel = createPanel(shell, kit, widget)
	const saved = connection.readSaved()
	if (saved) {
		widget.mode = saved.mode
		connection.resumeSaved(saved)
		if (saved.open) {
			widget.open({ focus: false })
		}
	}
	return widget
}
