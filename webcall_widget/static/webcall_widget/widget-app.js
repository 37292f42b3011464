// @ts-check
// django-webcall-widget: the widget, loaded by widget.js. Notes: docs/widget.md
;(() => {
	"use strict"

	const ICONS = {
		close: "M6 6l12 12M18 6L6 18",
		send: "M4 12l16-8-6 16-2-6-8-2z",
		mic: "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM6 11a6 6 0 0 0 12 0M12 17v4M9 21h6",
	}
	const MODE_LABELS = { text: "modeText", WebAudio: "modeWebAudio", TextAudio: "modeTextAudio" }
	const STATE_LABELS = {
		idle: "stateIdle",
		connecting: "stateConnecting",
		live: "stateLive",
		reconnecting: "stateReconnecting",
		ending: "stateLive",
		ended: "stateEnded",
		error: "stateError",
	}
	/** @type {WebcallKit["h"]} */
	let h
	/** @type {WebcallKit["icon"]} */
	let icon

	/** @param {Attributes} attributes @param {Children} children @param {() => void} onClick */
	function button(attributes, children, onClick) {
		const element = h("button", { type: "button", ...attributes }, children)
		element.addEventListener("click", onClick)
		return element
	}

	// unchanged text is left alone: a live region would say it again
	/** @param {Node} element @param {string} text */
	function setText(element, text) {
		if (element.textContent !== text) {
			element.textContent = text
		}
	}

	/** @param {string} template @param {Record<string, string>} values */
	function format(template, values) {
		return template.replace(/%\((\w+)\)s/g, (_, key) => (key in values ? values[key] : ""))
	}

	// No lookbehind: older Safari lacks it.
	const INLINE =
		/`([^`\n]+)`|\*\*(\S(?:[^*\n]*\S)?)\*\*|\*(\S(?:[^*\n]*\S)?)\*|\[([^\]\n]+)\]\(([^\s)]+)\)|(https?:\/\/[^\s<>()]*[^\s<>().,;:!?'"])/g
	const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"])
	const BULLET = /^\s*([-*\u2022])\s+(.*)$/
	const NUMBERED = /^\s*(\d{1,3})[.)]\s+(.*)$/

	/** @param {string} href @param {string} label */
	function safeLink(href, label) {
		let url
		try {
			url = new URL(href)
		} catch {
			return null
		}
		if (!LINK_PROTOCOLS.has(url.protocol)) {
			return null
		}
		return h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer nofollow" }, [label])
	}

	/** @param {string} text */
	function inlineNodes(text) {
		const nodes = []
		let last = 0
		for (const match of text.matchAll(INLINE)) {
			const [whole, code, bold, italic, label, href, bare] = match
			let node = null
			if (code !== undefined) {
				node = h("code", {}, [code])
			} else if (bold !== undefined) {
				node = h("strong", {}, [bold])
			} else if (italic !== undefined) {
				node = h("em", {}, [italic])
			} else if (label !== undefined) {
				node = safeLink(href, label) || label
			} else {
				node = safeLink(bare, bare) || bare
			}
			nodes.push(text.slice(last, match.index), node)
			last = match.index + whole.length
		}
		nodes.push(text.slice(last))
		return nodes
	}

	/** @param {string} text */
	function richText(text) {
		const fragment = document.createDocumentFragment()
		/** @type {string[]} */
		let paragraph = []
		let list = null
		const flush = () => {
			if (paragraph.length) {
				fragment.append(h("p", {}, inlineNodes(paragraph.join("\n"))))
				paragraph = []
			}
		}
		for (const line of text.split("\n")) {
			const bullet = BULLET.exec(line)
			const item = bullet || NUMBERED.exec(line)
			if (item) {
				flush()
				const tag = bullet ? "ul" : "ol"
				if (!list || list.tagName.toLowerCase() !== tag) {
					list = h(tag, !bullet && item[1] !== "1" ? { start: item[1] } : {})
					fragment.append(list)
				}
				list.append(h("li", {}, inlineNodes(item[2])))
			} else if (line.trim() === "") {
				flush()
				list = null
			} else {
				list = null
				paragraph.push(line)
			}
		}
		flush()
		return fragment
	}

	const PLAYBACK_PREBUFFER_MS = 100

	class VoiceError extends Error {
		/** @param {string} code @param {unknown} [cause] */
		constructor(code, cause) {
			super(code, { cause })
			this.code = code
		}
	}

	/** @type {Record<string, string>} */
	const MICROPHONE_ERRORS = {
		NotAllowedError: "mic_denied",
		SecurityError: "mic_denied",
		PermissionDeniedError: "mic_denied",
		NotFoundError: "mic_missing",
		OverconstrainedError: "mic_missing",
		DevicesNotFoundError: "mic_missing",
		NotReadableError: "mic_busy",
		TrackStartError: "mic_busy",
		AbortError: "mic_busy",
	}

	/** @param {Voice} voice */
	async function startAudio(voice) {
		try {
			await voice.startPlayback()
			await voice.startCapture()
		} catch (error) {
			return error instanceof VoiceError ? error.code : "audio_failed"
		}
		return null
	}

	class Voice {
		// Synchronously in the click: iOS Safari starts audio only from a user gesture.
		/** @param {Widget} widget */
		constructor(widget) {
			const Context = window.AudioContext || window.webkitAudioContext
			this.context = new Context({ latencyHint: "interactive" })
			if (this.context.state === "suspended") {
				this.context.resume().catch(() => {})
			}
			this.widget = widget
			this.config = widget.config
			this.stream = null
			this.source = null
			this.capture = null
			this.playback = null
			this.muted = false
			this.speaking = false
			this.wakeLock = null
			this.closed = false
			/** @type {((stats: PlaybackStats) => void)[]} */
			this.statsWaiters = []
			this.onVisibility = () => {
				if (document.visibilityState === "visible" && !this.closed) {
					this.holdWakeLock()
				}
			}
		}

		static supported() {
			return Boolean((window.AudioContext || window.webkitAudioContext) && window.AudioWorkletNode)
		}

		async startPlayback() {
			try {
				await this.context.audioWorklet.addModule(this.config.assets.worklet)
			} catch (error) {
				throw new VoiceError("audio_failed", error)
			}
			this.playback = new AudioWorkletNode(this.context, "webcall-playback", {
				numberOfInputs: 0,
				outputChannelCount: [1],
				processorOptions: { sourceRate: this.config.audio.outputRate, prebufferMs: PLAYBACK_PREBUFFER_MS },
			})
			this.playback.port.onmessage = (event) => this.fromPlayback(event.data)
			this.playback.connect(this.context.destination)
		}

		async startCapture() {
			if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
				throw new VoiceError(window.isSecureContext ? "mic_missing" : "mic_insecure")
			}
			try {
				this.stream = await navigator.mediaDevices.getUserMedia({
					audio: { channelCount: 1, ...this.config.microphone },
				})
			} catch (error) {
				throw new VoiceError(MICROPHONE_ERRORS[error && error.name] || "audio_failed", error)
			}
			if (this.closed) {
				this.stopTracks()
				return
			}
			this.source = this.context.createMediaStreamSource(this.stream)
			this.capture = new AudioWorkletNode(this.context, "webcall-capture", {
				processorOptions: { targetRate: this.config.audio.inputRate, frameMs: this.config.audio.frameMs },
			})
			this.capture.port.onmessage = (event) => this.fromCapture(event.data)
			this.source.connect(this.capture)
			// silent, but connected so that it renders in every browser
			this.capture.connect(this.context.destination)
			this.holdWakeLock()
			document.addEventListener("visibilitychange", this.onVisibility)
		}

		get capturing() {
			return Boolean(this.capture)
		}

		/** @param {CaptureMessage} message */
		fromCapture(message) {
			if (message.type === "frame") {
				if (!this.closed) {
					this.widget.connection.sendAudio(message.pcm)
				}
			} else if (message.type === "level") {
				this.widget.showLevel(this.muted ? 0 : message.rms)
			}
		}

		/** @param {PlaybackMessage} message */
		fromPlayback(message) {
			if (message.type === "speaking") {
				this.speaking = message.speaking
				this.widget.onSpeaking(message.speaking)
			} else if (message.type === "stats") {
				for (const resolve of this.statsWaiters.splice(0)) {
					resolve(message)
				}
			}
		}

		/** @param {ArrayBuffer} buffer */
		play(buffer) {
			if (this.playback && !this.closed) {
				this.playback.port.postMessage({ type: "push", pcm: buffer }, [buffer])
			}
		}

		interrupt() {
			if (this.playback) {
				this.playback.port.postMessage({ type: "clear" })
			}
		}

		stats() {
			return new Promise((resolve) => {
				this.statsWaiters.push(resolve)
				;/** @type {AudioWorkletNode} */ (this.playback).port.postMessage({ type: "stats" })
			})
		}

		/** @param {boolean} muted */
		setMuted(muted) {
			this.muted = muted
			if (this.stream) {
				for (const track of this.stream.getAudioTracks()) {
					track.enabled = !muted
				}
			}
		}

		holdWakeLock() {
			if (!("wakeLock" in navigator) || this.wakeLock) {
				return
			}
			navigator.wakeLock.request("screen").then(
				(lock) => {
					this.wakeLock = lock
					lock.addEventListener("release", () => {
						if (this.wakeLock === lock) {
							this.wakeLock = null
						}
					})
					if (this.closed) {
						lock.release().catch(() => {})
					}
				},
				() => {},
			)
		}

		stopTracks() {
			if (this.stream) {
				for (const track of this.stream.getTracks()) {
					track.stop()
				}
			}
		}

		async close() {
			if (this.closed) {
				return
			}
			this.closed = true
			document.removeEventListener("visibilitychange", this.onVisibility)
			this.stopTracks()
			for (const node of [this.capture, this.playback]) {
				if (node) {
					node.port.postMessage({ type: "stop" })
					node.disconnect()
				}
			}
			if (this.source) {
				this.source.disconnect()
			}
			if (this.wakeLock) {
				const lock = this.wakeLock
				this.wakeLock = null
				lock.release().catch(() => {})
			}
			if (this.context.state !== "closed") {
				await this.context.close().catch(() => {})
			}
		}
	}

	const PING_INTERVAL_MS = 25000
	const PONG_TIMEOUT_MS = 10000
	const CONNECT_TIMEOUT_MS = 8000
	const RECONNECT_DELAYS_MS = [0, 500, 1000, 2000, 4000]
	const EARLY_FRAMES = 100

	class Connection {
		/** @param {WebcallWidgetConfig} config @param {string} storageKey @param {ConnectionListener} listener */
		constructor(config, storageKey, listener) {
			this.config = config
			this.storageKey = storageKey
			this.listener = listener
			this.socket = null
			/** @type {ConnectionPhase} */
			this.phase = "idle"
			this.call = null
			this.resume = null
			this.reconnecting = null
			this.pending = null
			/** @type {OutboxEntry[]} */
			this.outbox = []
			/** @type {Map<string, string>} */
			this.unconfirmed = new Map()
			/** @type {ArrayBuffer[]} */
			this.early = []
			this.pingTimer = 0
			this.pongTimer = 0
			this.awaitingPong = 0
			this.ended = null
			this.lastError = null
			this.endNotice = null
			this.previousFrame = null
			window.addEventListener("pagehide", () => this.onPageHide())
			window.addEventListener("pageshow", (event) => {
				if (event.persisted && this.phase === "live" && !this.isOpen()) {
					this.startReconnecting()
				}
			})
			window.addEventListener("offline", () => this.onOffline())
			window.addEventListener("online", () => this.onOnline())
		}

		isOpen() {
			return Boolean(this.socket && this.socket.readyState === WebSocket.OPEN)
		}

		/** @param {object} frame */
		sendJson(frame) {
			this.socket?.send(JSON.stringify(frame))
		}

		/** @param {Mode} mode */
		async create(mode) {
			const controller = new AbortController()
			this.pending = controller
			this.phase = "calling"
			let response
			let body = null
			try {
				response = await fetch(this.config.createCallUrl, {
					method: "POST",
					headers: { "Content-Type": "application/json" },
					body: JSON.stringify({ mode }),
					credentials: "same-origin",
					signal: controller.signal,
				})
				body = await response.json().catch(() => null)
			} catch {
				this.phase = "idle"
				return controller.signal.aborted ? null : { code: "network" }
			} finally {
				this.pending = null
			}
			if (!response.ok || !body || !body.socket) {
				this.phase = "idle"
				const error = (body && body.error) || {}
				const code = error.code || (response.status === 429 ? "rate_limited" : "network")
				return { code, message: error.message, retryAfter: response.headers.get("Retry-After") }
			}
			this.call = body.call
			this.connect(body.socket)
			return null
		}

		/** @param {string} url */
		connect(url) {
			let socket
			try {
				socket = new WebSocket(url)
			} catch {
				this.stopReconnecting()
				this.phase = "idle"
				this.listener.onConnectFailed()
				return
			}
			socket.binaryType = "arraybuffer"
			this.socket = socket
			this.ended = null
			this.lastError = null
			this.endNotice = null
			this.previousFrame = null
			socket.addEventListener("open", () => {
				for (const frame of this.early.splice(0)) {
					socket.send(frame)
				}
			})
			socket.addEventListener("message", (event) => this.onFrame(event))
			socket.addEventListener("close", (event) => this.onClose(socket, event))
			const timer = window.setTimeout(() => {
				if (socket.readyState === WebSocket.CONNECTING) {
					socket.close()
				}
			}, CONNECT_TIMEOUT_MS)
			socket.addEventListener("open", () => window.clearTimeout(timer))
			socket.addEventListener("close", () => window.clearTimeout(timer))
		}

		/** @param {ArrayBuffer} pcm */
		sendAudio(pcm) {
			const socket = this.socket
			if (socket && socket.readyState === WebSocket.OPEN) {
				socket.send(pcm)
			} else if (!socket || socket.readyState === WebSocket.CONNECTING) {
				this.early.push(pcm)
				if (this.early.length > EARLY_FRAMES) {
					this.early.shift()
				}
			}
		}

		dropAudio() {
			this.early = []
		}

		canSend() {
			return this.phase === "reconnecting" || (this.phase === "live" && this.isOpen())
		}

		/** @param {string} text */
		sendText(text) {
			const id = `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`
			if (this.phase === "reconnecting") {
				this.queue(id, text.trim())
				return "queued"
			}
			this.unconfirmed.set(id, text)
			this.sendJson({ type: "text", text, id })
			return "sent"
		}

		/** @param {string} id @param {string} text */
		queue(id, text) {
			this.outbox.push({ id, text })
			this.listener.onPending(id, text)
		}

		flushOutbox() {
			for (const { id, text } of this.outbox.splice(0)) {
				if (this.isOpen() && this.phase === "live") {
					this.unconfirmed.set(id, text)
					this.sendJson({ type: "text", text, id })
				} else {
					this.outbox.push({ id, text })
				}
			}
		}

		/** @param {string} id */
		confirm(id) {
			this.unconfirmed.delete(id)
			this.outbox = this.outbox.filter((queued) => queued.id !== id)
		}

		failPending() {
			for (const { id } of this.outbox) {
				this.listener.onUnsent(id)
			}
			for (const id of this.unconfirmed.keys()) {
				this.listener.onUnsent(id)
			}
			this.outbox = []
			this.unconfirmed.clear()
		}

		end() {
			this.phase = "ending"
			this.sendJson({ type: "end" })
		}

		abandon() {
			if (this.pending) {
				this.pending.abort()
				this.pending = null
			}
			this.finish()
			this.stopPinging()
			const socket = this.socket
			this.socket = null
			if (socket) {
				socket.close(1000)
			}
		}

		reset() {
			this.abandon()
			this.call = null
			this.early = []
		}

		/** @param {MessageEvent} event */
		onFrame(event) {
			if (typeof event.data !== "string") {
				this.listener.onAudio(event.data)
				return
			}
			/** @type {RelayFrame} */
			let frame
			try {
				frame = JSON.parse(event.data)
			} catch {
				return
			}
			const previous = this.previousFrame
			this.previousFrame = frame.type
			this.awaitingPong = 0
			const listener = this.listener
			switch (frame.type) {
				case "ready":
					this.call = frame.call
					this.stopReconnecting()
					this.resume = frame.resume || null
					this.phase = "live"
					listener.onReady(frame)
					if (this.resume) {
						this.save()
					} else {
						this.forget()
					}
					this.startPinging()
					break
				case "transcript":
					listener.onTranscript(frame.messages || [])
					for (const message of frame.messages || []) {
						if (message.role === "user") {
							this.confirm(message.id)
						}
					}
					this.flushOutbox()
					break
				case "resume":
					if (this.resume) {
						this.resume.token = frame.token
						this.save()
					}
					break
				case "message":
					if (frame.role === "user") {
						this.confirm(frame.id)
					}
					listener.onMessage(frame)
					break
				case "error":
					this.lastError = frame
					listener.onRelayError(frame)
					break
				case "ended":
					this.ended = frame.reason
					this.endNotice = previous === "error" && this.lastError ? this.lastError : null
					break
				case "interrupt":
					listener.onInterrupt()
					break
				default:
					break
			}
		}

		/** @param {WebSocket} socket @param {{code: number}} event */
		onClose(socket, event) {
			if (socket !== this.socket) {
				return
			}
			this.socket = null
			this.stopPinging()
			const code = event.code
			if (code === 1000 && this.ended !== null) {
				this.finish()
				this.listener.onEnded(this.endNotice)
				return
			}
			const known = this.config.relay.closeCodes[code]
			if (!known && (this.phase === "live" || this.phase === "reconnecting") && this.startReconnecting()) {
				return
			}
			this.finish()
			const fromFrame = this.lastError && this.lastError.code
			const reason = known === "upstream_failed" && fromFrame ? fromFrame : known || "dropped"
			const alreadySaid = Boolean(fromFrame) && fromFrame === reason
			this.listener.onFailed(reason, this.lastError ? this.lastError.message : undefined, alreadySaid)
		}

		finish() {
			this.stopReconnecting()
			this.forget()
			this.failPending()
			this.phase = "idle"
		}

		startPinging() {
			this.stopPinging()
			this.pingTimer = window.setInterval(() => this.ping(), PING_INTERVAL_MS)
		}

		ping() {
			const socket = this.socket
			if (!socket || socket.readyState !== WebSocket.OPEN) {
				return
			}
			const sentAt = Date.now()
			socket.send(JSON.stringify({ type: "ping", t: sentAt }))
			this.awaitingPong = sentAt
			window.clearTimeout(this.pongTimer)
			this.pongTimer = window.setTimeout(() => {
				if (this.awaitingPong === sentAt && this.socket === socket) {
					this.drop(socket)
				}
			}, PONG_TIMEOUT_MS)
		}

		stopPinging() {
			window.clearInterval(this.pingTimer)
			window.clearTimeout(this.pongTimer)
			this.pingTimer = 0
			this.awaitingPong = 0
		}

		/** @param {WebSocket} socket */
		drop(socket) {
			this.onClose(socket, { code: 1006 })
			socket.close(4000)
		}

		readSaved() {
			try {
				const saved = JSON.parse(window.sessionStorage.getItem(this.storageKey) || "null")
				if (saved && typeof saved.call === "string" && typeof saved.token === "string") {
					return saved
				}
			} catch {
				// storage refused
			}
			return null
		}

		save() {
			if (!this.resume || !this.call) {
				return
			}
			const saved = {
				call: this.call,
				token: this.resume.token,
				seconds: this.resume.seconds,
				...this.listener.session(),
			}
			try {
				window.sessionStorage.setItem(this.storageKey, JSON.stringify(saved))
			} catch {
				// storage refused
			}
		}

		forget() {
			this.resume = null
			try {
				window.sessionStorage.removeItem(this.storageKey)
			} catch {
				// storage refused
			}
		}

		/** @param {SavedCall} saved */
		resumeSaved(saved) {
			this.call = saved.call
			this.resume = { token: saved.token, seconds: Number(saved.seconds) || 0 }
			this.startReconnecting()
		}

		canResume() {
			return Boolean(this.resume && this.resume.token && this.call)
		}

		startReconnecting() {
			if (!this.canResume()) {
				return false
			}
			if (this.phase !== "reconnecting") {
				for (const [id, text] of this.unconfirmed) {
					this.queue(id, text)
				}
				this.unconfirmed.clear()
				const seconds = (this.resume && this.resume.seconds) || 0
				this.reconnecting = { deadline: Date.now() + seconds * 1000, attempt: 0, timer: 0 }
				this.phase = "reconnecting"
				this.listener.onReconnecting()
			}
			this.scheduleReconnect()
			return true
		}

		scheduleReconnect() {
			const attempt = this.reconnecting
			if (!attempt) {
				return
			}
			window.clearTimeout(attempt.timer)
			const left = attempt.deadline - Date.now()
			if (left <= 0 && attempt.attempt > 0) {
				this.finish()
				this.listener.onLost()
				return
			}
			const base = RECONNECT_DELAYS_MS[Math.min(attempt.attempt, RECONNECT_DELAYS_MS.length - 1)]
			const delay = Math.max(0, Math.min(base * (0.8 + Math.random() * 0.4), left))
			attempt.attempt += 1
			attempt.timer = window.setTimeout(() => this.tryReconnect(), delay)
		}

		tryReconnect() {
			if (!this.reconnecting || this.phase !== "reconnecting" || !this.resume) {
				return
			}
			if (navigator.onLine === false) {
				this.scheduleReconnect()
				return
			}
			this.connect(`${this.config.relay.socket}${encodeURIComponent(this.resume.token)}/`)
		}

		stopReconnecting() {
			if (this.reconnecting) {
				window.clearTimeout(this.reconnecting.timer)
				this.reconnecting = null
			}
		}

		onOffline() {
			if (this.phase === "live" && this.socket && this.canResume()) {
				this.drop(this.socket)
			}
		}

		onOnline() {
			if (this.phase === "reconnecting" && this.reconnecting && !this.socket) {
				window.clearTimeout(this.reconnecting.timer)
				this.tryReconnect()
			}
		}

		onPageHide() {
			if (this.canResume() && (this.phase === "live" || this.phase === "reconnecting")) {
				this.save()
				return
			}
			if (this.isOpen()) {
				this.sendJson({ type: "end" })
				this.socket?.close(1000)
			}
		}
	}

	/** @implements {ConnectionListener} */
	class Widget {
		/** @param {WebcallShell} shell */
		constructor(shell) {
			this.slug = shell.slug
			this.config = shell.config
			this.strings = shell.config.strings.ui
			this.errors = shell.config.strings.errors
			this.host = shell.host
			this.shadow = shell.shadow
			this.root = shell.root
			this.launcher = shell.launcher
			/** @type {WidgetState} */
			this.state = "idle"
			this.isOpen = false
			this.mode = null
			this.voice = null
			this.voicePending = false
			this.messageElements = new Map()
			this.lastAgentMessageId = null
			this.connection = new Connection(this.config, shell.storageKey, this)
			const { agent } = this.config
			const s = this.strings
			/** @param {string} text */
			const bdi = (text) => h("bdi", {}, [text])
			const modes = this.availableModes()
			const choosing = modes.length > 1
			this.launcher.setAttribute("aria-controls", "webcall-panel")

			this.statusText = h("span", { class: "status", role: "status" }, [s.stateIdle])
			this.closeButton = button({ class: "icon-button", "aria-label": s.closeChat }, [icon(ICONS.close, true)], () =>
				this.close(),
			)
			const header = h("div", { class: "header" }, [
				agent.avatarUrl && h("img", { class: "avatar", src: agent.avatarUrl, alt: "" }),
				h("div", { class: "heading" }, [
					h("h2", { class: "title", id: "webcall-title" }, [bdi(agent.title)]),
					agent.subtitle && h("p", { class: "subtitle", title: agent.subtitle }, [bdi(agent.subtitle)]),
					this.statusText,
				]),
				this.closeButton,
			])

			this.startView = h("div", { class: "start" }, [
				agent.subtitle && h("p", { class: "about" }, [bdi(agent.subtitle)]),
				agent.greeting && h("p", { class: "greeting" }, [bdi(agent.greeting)]),
				choosing && h("p", { class: "choose", id: "webcall-choose" }, [s.chooseMode]),
				h(
					"div",
					{ class: "modes", role: "group", "aria-labelledby": choosing && "webcall-choose" },
					modes.map((mode) =>
						button(
							{ class: "primary-button", "data-mode": mode },
							[choosing ? s[MODE_LABELS[mode]] || mode : s.start],
							() => this.start(mode),
						),
					),
				),
			])
			this.transcript = h("ol", {
				class: "transcript",
				role: "log",
				"aria-live": "off",
				"aria-label": s.transcript,
				hidden: true,
			})
			this.notice = h("div", { class: "notice", role: "alert", hidden: true })
			this.announcer = h("div", { class: "announcer sr-only", "aria-live": "polite", "aria-atomic": "true" })

			this.input = h("textarea", {
				class: "input",
				rows: 1,
				"aria-label": s.messageLabel,
				placeholder: s.messagePlaceholder,
				maxlength: this.config.maxTextLength,
				enterkeyhint: "send",
				dir: "auto",
			})
			this.input.addEventListener("keydown", (event) => {
				// 229: Safari's keydown that ends an IME composition
				if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
					event.preventDefault()
					this.submitComposer()
				}
			})
			this.input.addEventListener("input", () => this.fitInput())
			this.sendButton = h("button", { type: "submit", class: "send", "aria-label": s.send }, [icon(ICONS.send)])
			this.composer = h("form", { class: "composer" }, [this.input, this.sendButton])
			this.composer.addEventListener("submit", (event) => {
				event.preventDefault()
				this.submitComposer()
			})
			this.continueVoiceButton = button({ class: "primary-button continue-voice" }, [s.continueVoice], () =>
				this.continueVoice(),
			)
			this.micButton = button(
				{ class: "mic", "aria-pressed": "false", "aria-label": s.mute },
				[icon(ICONS.mic, true)],
				() => this.toggleMute(),
			)
			this.meter = h("div", { class: "meter", role: "presentation", title: s.micLevel }, [
				h("div", { class: "meter-fill" }),
			])
			this.voiceStatus = h("span", { class: "voice-status", "aria-live": "polite" })
			this.voiceBar = h("div", { class: "voicebar" }, [
				this.continueVoiceButton,
				this.micButton,
				this.meter,
				this.voiceStatus,
			])
			this.endButton = button({ class: "link-button" }, [s.end], () => this.end())
			this.restartButton = button({ class: "secondary-button" }, [s.restart], () => this.restart())
			this.footer = h("div", { class: "footer" }, [
				this.voiceBar,
				this.composer,
				h("div", { class: "footer-actions" }, [this.endButton, this.restartButton]),
			])

			this.panel = h(
				"section",
				{
					class: "panel",
					id: "webcall-panel",
					role: "dialog",
					"aria-modal": "false",
					"aria-labelledby": "webcall-title",
					hidden: true,
				},
				[
					header,
					h("div", { class: "body" }, [this.startView, this.transcript, this.notice, this.announcer]),
					this.footer,
				],
			)
			this.panel.addEventListener("keydown", (event) => {
				if (event.key === "Escape") {
					event.stopPropagation()
					this.close()
				}
			})
			this.root.append(this.panel)
			this.render()
			const saved = this.connection.readSaved()
			if (saved) {
				this.mode = saved.mode
				this.connection.resumeSaved(saved)
				if (saved.open) {
					this.open({ focus: false })
				}
			}
		}

		get callId() {
			return this.connection.call
		}

		session() {
			return { mode: this.mode, open: this.isOpen }
		}

		availableModes() {
			return this.config.modes.filter((mode) => mode === "text" || Voice.supported())
		}

		fitInput() {
			this.input.style.height = "auto"
			this.input.style.height = `${Math.min(this.input.scrollHeight, 140)}px`
		}

		/** @param {WidgetState} state */
		setState(state) {
			if (state === this.state) {
				return
			}
			const previous = this.state
			this.state = state
			this.render()
			this.emit("state", { state, previous, call: this.callId })
		}

		view() {
			const { state, voice } = this
			const said = this.messageElements.size > 0
			const over = state === "ended" || state === "error"
			const waiting = this.voicePending && !voice && state === "live"
			const voiceBar = !over && Boolean(voice || waiting)
			const restart = over && !this.notice.querySelector("button")
			return {
				over,
				start: state === "idle" && !said,
				transcript: said || (state !== "idle" && !over),
				composer: !over && this.mode !== "WebAudio",
				typing: (state === "live" || state === "reconnecting") && Boolean(this.mode) && this.mode !== "WebAudio",
				voiceBar,
				waiting,
				mic: voiceBar && Boolean(voice && voice.capturing),
				restart,
				footer: (state !== "idle" || said) && (!over || restart),
			}
		}

		render() {
			const s = this.strings
			const { state, voice } = this
			const view = this.view()
			this.root.setAttribute("data-state", state)
			setText(this.statusText, s[STATE_LABELS[state]])
			this.startView.hidden = !view.start
			this.transcript.hidden = !view.transcript
			this.composer.hidden = !view.composer
			this.input.disabled = this.sendButton.disabled = !view.typing
			this.endButton.hidden = view.over
			this.restartButton.hidden = !view.restart
			this.voiceBar.hidden = !view.voiceBar
			this.continueVoiceButton.hidden = !view.waiting
			this.micButton.hidden = this.meter.hidden = !(voice && voice.capturing)
			this.footer.hidden = !view.footer
			let voiceText = ""
			if (voice) {
				this.micButton.setAttribute("aria-pressed", voice.muted ? "true" : "false")
				this.micButton.setAttribute("aria-label", voice.muted ? s.unmute : s.mute)
				if (voice.capturing) {
					voiceText = voice.muted
						? s.voiceMuted
						: voice.speaking
							? s.voiceSpeaking
							: state === "live"
								? s.voiceListening
								: s.stateConnecting
				} else if (state === "connecting") {
					voiceText = s.voiceStarting
				} else if (voice.speaking) {
					voiceText = s.voiceSpeaking
				}
			}
			setText(this.voiceStatus, voiceText)
		}

		/** @param {string} message @param {NoticeAction[]} actions */
		showNotice(message, actions = []) {
			this.notice.replaceChildren(h("p", {}, [message]))
			if (actions.length) {
				const row = h("div", { class: "notice-actions" })
				for (const [text, handler] of actions) {
					row.append(button({ class: "secondary-button" }, [text], handler))
				}
				this.notice.append(row)
			}
			this.notice.hidden = false
			this.render()
		}

		hideNotice() {
			this.notice.hidden = true
			this.notice.replaceChildren()
			this.render()
		}

		open({ focus = true } = {}) {
			if (this.isOpen) {
				return
			}
			this.isOpen = true
			this.panel.hidden = false
			this.root.setAttribute("data-open", "true")
			this.launcher.setAttribute("aria-expanded", "true")
			this.connection.save()
			if (focus) {
				this.focusInside()
			}
		}

		close() {
			if (!this.isOpen) {
				return
			}
			const hadFocus = this.shadow.activeElement && this.panel.contains(this.shadow.activeElement)
			this.isOpen = false
			this.panel.hidden = true
			this.root.setAttribute("data-open", "false")
			this.launcher.setAttribute("aria-expanded", "false")
			this.connection.save()
			if (hadFocus || this.shadow.activeElement === null) {
				this.launcher.focus()
			}
		}

		toggle() {
			if (this.isOpen) {
				this.close()
			} else {
				this.open()
			}
		}

		focusInside() {
			if (!this.isOpen) {
				return
			}
			const view = this.view()
			let target
			if (view.waiting) {
				target = this.continueVoiceButton
			} else if (view.typing) {
				target = this.input
			} else if (view.mic && view.footer) {
				target = this.micButton
			} else if (!this.notice.hidden) {
				target = this.notice.querySelector("button")
			} else if (view.start) {
				target = this.startView.querySelector("button")
			} else if (view.restart) {
				target = this.restartButton
			}
			;(target || this.closeButton).focus()
		}

		/** @param {Mode} [mode] */
		async start(mode) {
			if (["connecting", "live", "ending", "reconnecting"].includes(this.state)) {
				return
			}
			const chosen = mode || this.config.defaultMode
			if (!this.availableModes().includes(chosen)) {
				this.showError("mode_not_allowed")
				return
			}
			this.reset()
			this.mode = chosen
			this.open()
			const voice = chosen !== "text" && this.newVoice()
			if (voice === null) {
				this.showError("audio_failed", null, true)
				return
			}
			this.setState("connecting")
			if (voice) {
				this.render()
				const code = await startAudio(voice)
				if (voice !== this.voice) {
					voice.close() // ended meanwhile
					return
				}
				if (code && !this.textInstead(voice, code)) {
					this.voice = null
					await voice.close()
					/** @type {NoticeAction[]} */
					const actions = [[this.strings.retry, () => this.start(chosen)]]
					if (this.config.modes.includes("text")) {
						actions.push([this.strings.textInstead, () => this.start("text")])
					}
					this.setState("error")
					this.showNotice(this.errorText(code), actions)
					this.emitError(code)
					this.focusInside()
					return
				}
				this.render()
			}
			const failure = await this.connection.create(chosen)
			if (failure) {
				this.showError(failure.code, failure.message, true, failure.retryAfter)
			}
		}

		// Inside the visitor's click (see Voice); null: no audio here.
		newVoice() {
			try {
				this.voice = new Voice(this)
			} catch {
				this.voice = null
			}
			return this.voice
		}

		/** @param {Voice} voice @param {string} code */
		textInstead(voice, code) {
			if (this.mode !== "TextAudio" || !voice.playback) {
				return false
			}
			this.showMicrophoneRefused(code)
			this.emitError(code)
			return true
		}

		/** @param {string} code */
		showMicrophoneRefused(code) {
			const s = this.strings
			this.showNotice(`${this.errorText(code)} ${s.continuingAsText}`, [[s.retry, () => this.retryMicrophone()]])
		}

		async retryMicrophone() {
			const voice = this.voice
			if (!voice || voice.capturing || voice.closed) {
				return
			}
			try {
				await voice.startCapture()
			} catch (error) {
				if (voice === this.voice) {
					this.textInstead(voice, error instanceof VoiceError ? error.code : "audio_failed")
					this.focusInside()
				}
				return
			}
			if (voice === this.voice) {
				this.hideNotice()
				this.render()
				this.focusInside()
			}
		}

		toggleMute() {
			if (!this.voice) {
				return
			}
			this.voice.setMuted(!this.voice.muted)
			this.render()
		}

		/** @param {number} rms */
		showLevel(rms) {
			const level = Math.min(1, Math.sqrt(rms) * 1.8)
			this.meter.style.setProperty("--level", level.toFixed(3))
		}

		/** @param {boolean} speaking */
		onSpeaking(speaking) {
			this.root.setAttribute("data-speaking", speaking ? "true" : "false")
			this.render()
		}

		async continueVoice() {
			if (!this.view().waiting) {
				return
			}
			const voice = this.newVoice()
			if (!voice) {
				this.showNotice(this.errorText("audio_failed"))
				return
			}
			this.voicePending = false
			this.render()
			const code = await startAudio(voice)
			if (voice !== this.voice) {
				voice.close()
			} else if (code) {
				if (!this.textInstead(voice, code)) {
					this.voice = null
					this.voicePending = true
					await voice.close()
					this.showNotice(this.errorText(code))
					this.emitError(code)
				}
				this.render()
			} else {
				this.hideNotice()
				this.render()
				this.focusInside()
			}
		}

		/** @param {string} id @param {string} text */
		onPending(id, text) {
			this.showMessage({ id, role: "user", text, final: true }, { pending: true })
		}

		/** @param {string} id */
		onUnsent(id) {
			const item = this.messageElements.get(id)
			if (!item) {
				return
			}
			item.classList.remove("message--pending")
			item.classList.add("message--unsent")
			this.messageStatus(item).textContent = this.strings.notSent
		}

		/** @param {?string} id */
		markInterrupted(id) {
			const item = id && this.messageElements.get(id)
			if (!item || item.classList.contains("message--interrupted")) {
				return
			}
			item.classList.add("message--interrupted")
			this.messageStatus(item).textContent = this.strings.interrupted
		}

		/** @param {Element} item */
		messageStatus(item) {
			let status = item.querySelector(".message-status")
			if (!status) {
				status = h("span", { class: "message-status" })
				item.append(status)
			}
			return status
		}

		/** @param {ReadyFrame} frame */
		onReady(frame) {
			this.mode = frame.mode || this.mode
			const audio = this.config.audio
			if (frame.audio && (frame.audio.inputRate !== audio.inputRate || frame.audio.outputRate !== audio.outputRate)) {
				console.warn("WebcallWidget: the call's audio format differs from the agent's configuration", frame.audio)
			}
			const fromPageLoad = this.state === "reconnecting" && !this.voice
			if (frame.resumed && fromPageLoad && frame.mode !== "text") {
				this.voicePending = true
			}
			this.setState("live")
			this.emit("ready", { call: frame.call, mode: frame.mode, audio: frame.audio, resumed: Boolean(frame.resumed) })
			if (!frame.resumed || (this.voicePending && this.isOpen)) {
				this.focusInside()
			}
		}

		/** @param {TranscriptMessage[]} messages */
		onTranscript(messages) {
			for (const message of messages) {
				this.showMessage(message, { quiet: true })
			}
		}

		/** @param {TranscriptMessage} frame */
		onMessage(frame) {
			this.showMessage(frame)
			this.emit("message", { id: frame.id, role: frame.role, text: frame.text, final: frame.final, call: this.callId })
		}

		/** @param {RelayError} frame */
		onRelayError(frame) {
			const message = this.errorText(frame.code, frame.message)
			this.emitError(frame.code, message)
			if (this.state === "live") {
				this.showNotice(message)
			}
		}

		/** @param {ArrayBuffer} buffer */
		onAudio(buffer) {
			if (this.voice) {
				this.voice.play(buffer)
			}
		}

		onInterrupt() {
			if (this.voice) {
				if (this.voice.speaking) {
					this.markInterrupted(this.lastAgentMessageId)
				}
				this.voice.interrupt()
			}
			this.emit("interrupt", { call: this.callId })
		}

		onReconnecting() {
			this.hideNotice()
			this.setState("reconnecting")
		}

		/** @param {?RelayError} notice */
		onEnded(notice) {
			this.releaseVoice()
			if (notice) {
				this.showNotice(this.errorText(notice.code, notice.message))
			} else {
				this.hideNotice()
			}
			this.setState("ended")
			this.focusInside()
		}

		/** @param {string} reason @param {string | undefined} message @param {boolean} alreadySaid */
		onFailed(reason, message, alreadySaid) {
			this.releaseVoice()
			if (reason === "taken_over") {
				this.endWith(reason)
			} else {
				this.showError(reason, message, reason === "restarting", undefined, alreadySaid)
			}
		}

		onLost() {
			this.releaseVoice()
			this.endWith("lost_while_away")
		}

		/** @param {string} code */
		endWith(code) {
			const message = this.errorText(code)
			this.setState("ended")
			this.showNotice(message)
			this.emitError(code, message)
		}

		onConnectFailed() {
			this.showError("network", null, true)
		}

		/** @param {string} code @param {?string} [fallback] */
		errorText(code, fallback) {
			return this.errors[code] || fallback || this.errors.network
		}

		/** @param {string} code @param {?string} [fallback] @param {boolean} [canRetry] @param {?string} [retryAfter] */
		showError(code, fallback, canRetry, retryAfter, alreadySaid = false) {
			const message = this.errorText(code, fallback)
			/** @type {NoticeAction[]} */
			const actions = []
			if (canRetry && this.mode) {
				const mode = this.mode
				actions.push([this.strings.retry, () => this.start(mode)])
			}
			this.setState("error")
			this.showNotice(message, actions)
			if (!alreadySaid) {
				this.emit("error", {
					code,
					message,
					call: this.callId,
					retryAfter: retryAfter ? Number(retryAfter) : undefined,
				})
			}
			this.focusInside()
		}

		/** @param {TranscriptMessage} message */
		showMessage({ id, role, text, final }, { quiet = false, pending = false } = {}) {
			const list = this.transcript
			const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80
			let item = this.messageElements.get(id)
			if (!item) {
				const speaker = role === "user" ? this.strings.you : this.config.agent.title
				item = h("li", { class: `message message--${role === "user" ? "user" : "agent"}` }, [
					h("span", { class: "sr-only" }, [`${speaker}: `]),
					h(role === "user" ? "span" : "div", { class: "text", dir: "auto" }),
				])
				this.messageElements.set(id, item)
				list.append(item)
				this.render()
			}
			const textElement = item.querySelector(".text")
			if (role === "user") {
				textElement.textContent = text
			} else {
				textElement.replaceChildren(richText(text))
				this.lastAgentMessageId = id
			}
			item.classList.toggle("message--partial", !final)
			if (role === "user") {
				item.classList.toggle("message--pending", pending)
				item.classList.remove("message--unsent")
				if (pending) {
					this.messageStatus(item).textContent = this.strings.waitingToSend
				} else if (item.querySelector(".message-status")) {
					item.querySelector(".message-status").remove()
				}
			}
			if (final && role !== "user" && !quiet) {
				const spoken = textElement.textContent
				this.announcer.textContent = format(this.strings.agentSays, { name: this.config.agent.title, text: spoken })
			}
			if (nearBottom || role === "user") {
				list.scrollTop = list.scrollHeight
			}
		}

		submitComposer() {
			const text = this.input.value.trim()
			if (!text) {
				return
			}
			if (this.send(text)) {
				this.input.value = ""
				this.fitInput()
			}
		}

		/** @param {unknown} text */
		send(text) {
			if (typeof text !== "string" || !text.trim() || this.mode === "WebAudio") {
				return false
			}
			if (!this.connection.canSend()) {
				return false
			}
			if (text.length > this.config.maxTextLength) {
				this.showNotice(this.strings.tooLong)
				return false
			}
			if (this.connection.sendText(text) === "sent") {
				this.hideNotice()
			}
			return true
		}

		end() {
			const { connection } = this
			const { socket } = connection
			if (this.state === "reconnecting" || connection.pending || (!socket && (this.voicePending || this.voice))) {
				connection.abandon()
				this.releaseVoice()
				this.setState("ended")
			} else if (connection.isOpen()) {
				this.setState("ending")
				connection.end()
			} else if (socket) {
				socket.close()
			}
		}

		restart() {
			this.reset()
			this.setState("idle")
			this.focusInside()
		}

		reset() {
			this.releaseVoice()
			this.connection.reset()
			this.mode = null
			this.messageElements.clear()
			this.lastAgentMessageId = null
			this.transcript.replaceChildren()
			this.hideNotice()
		}

		releaseVoice() {
			this.voicePending = false
			if (this.voice) {
				const voice = this.voice
				this.voice = null
				voice.close()
				this.connection.dropAudio()
				this.root.setAttribute("data-speaking", "false")
			}
		}

		/** @param {string} code */
		emitError(code, message = this.errorText(code)) {
			this.emit("error", { code, message, call: this.callId })
		}

		/** @param {string} name @param {object} detail */
		emit(name, detail) {
			this.host.dispatchEvent(
				new CustomEvent(`webcall:${name}`, { detail: { agent: this.slug, ...detail }, bubbles: true, composed: true }),
			)
		}
	}

	window.WebcallWidget._mount = (shell, kit) => {
		;({ h, icon } = kit)
		return new Widget(shell)
	}
})()
