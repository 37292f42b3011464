// The link to the relay; no DOM here (docs/widget.md)
const PING_INTERVAL_MS = 25000
const PONG_TIMEOUT_MS = 10000
const CONNECT_TIMEOUT_MS = 8000
const RECONNECT_DELAYS_MS = [0, 500, 1000, 2000, 4000]
const EARLY_FRAMES = 100
const OPEN = 1

/** @type {ConnectionFactory} */
export const createConnection = (config, storageKey, listener, env = globalThis) => ({
	config,
	storageKey,
	listener,
	env,
	socket: null,
	phase: "idle",
	call: null,
	resume: null,
	outbox: new Map(),
	early: [],
	pingTimer: 0,
	pongTimer: 0,
	retryTimer: 0,
	attempt: 0,
	deadline: 0,
	moves: 0,
	startFrame: "",
	ended: null,
	hangUp: false,
	lastError: null,
	previousFrame: null,

	isOpen() {
		return this.socket?.readyState === OPEN
	},

	sendJson(frame) {
		this.socket?.send(JSON.stringify(frame))
	},

	// the panel opened: a start socket, for a start in one round trip
	prepare() {
		if (!this.socket && this.phase === "idle") {
			this.connect(this.config.relay.start)
		}
	},

	create(mode) {
		this.prepare()
		this.phase = "calling"
		this.moves = 0
		this.early.unshift((this.startFrame = JSON.stringify({ type: "start", mode })))
		if (this.isOpen()) {
			this.flush()
		}
	},

	flush() {
		for (const frame of this.early.splice(0)) {
			this.socket?.send(frame)
		}
	},

	connect(url) {
		let socket
		try {
			socket = new this.env.WebSocket(url)
		} catch {
			clearTimeout(this.retryTimer)
			this.phase = "idle"
			this.listener.onConnectFailed()
			return
		}
		socket.binaryType = "arraybuffer"
		this.socket = socket
		this.ended = null
		this.lastError = null
		this.previousFrame = null
		const timer = setTimeout(() => socket.close(), CONNECT_TIMEOUT_MS)
		socket.addEventListener("open", () => {
			clearTimeout(timer)
			this.flush()
		})
		socket.addEventListener("message", (event) => this.onFrame(event))
		socket.addEventListener("close", (event) => {
			clearTimeout(timer)
			this.onClose(socket, event)
		})
	},

	sendAudio(pcm) {
		const socket = this.socket
		if (socket?.readyState === OPEN && this.phase !== "idle") {
			socket.send(pcm)
		} else if (this.early.push(pcm) > EARLY_FRAMES) {
			this.early.splice(this.phase === "calling" ? 1 : 0, 1) // the start frame stays
		}
	},

	dropAudio() {
		this.early = []
	},

	canSend() {
		return this.phase === "reconnecting" || this.phase === "live"
	},

	sendText(text) {
		const id = `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`
		if (this.phase === "reconnecting" || !this.isOpen()) {
			this.queue(id, text.trim())
			return "queued"
		}
		this.outbox.set(id, { text, sent: true })
		this.sendJson({ type: "text", text, id })
		return "sent"
	},

	queue(id, text) {
		this.outbox.set(id, { text, sent: false })
		this.listener.onPending(id, text)
	},

	flushOutbox() {
		if (this.isOpen() && this.phase === "live") {
			for (const [id, entry] of this.outbox) {
				if (!entry.sent) {
					entry.sent = true
					this.sendJson({ type: "text", text: entry.text, id })
				}
			}
		}
	},

	failPending() {
		for (const id of this.outbox.keys()) {
			this.listener.onUnsent(id)
		}
		this.outbox.clear()
	},

	end() {
		this.hangUp = true
		this.save()
		if (this.isOpen()) {
			this.phase = "ending"
			this.sendJson({ type: "end" })
		}
	},

	abandon() {
		const idle = this.phase === "idle"
		this.finish()
		this.stopPinging()
		if (idle) {
			return // a start socket without a call stays, for the next start
		}
		const socket = this.socket
		this.socket = null
		socket?.close(1000)
	},

	reset() {
		this.abandon()
		this.call = null
		this.early = []
	},

	onFrame({ data }) {
		if (typeof data !== "string") {
			this.listener.onAudio(data)
			return
		}
		/** @type {RelayFrame} */
		let frame
		try {
			frame = JSON.parse(data)
		} catch {
			return
		}
		const previous = this.previousFrame
		this.previousFrame = frame.type
		clearTimeout(this.pongTimer)
		const listener = this.listener
		switch (frame.type) {
			case "ready":
				this.call = frame.call
				this.early = []
				clearTimeout(this.retryTimer)
				this.resume = frame.resume || null
				if (this.hangUp) {
					this.end()
				} else {
					this.phase = "live"
					listener.onReady(frame)
				}
				if (this.resume) {
					this.save()
				} else {
					this.forget()
				}
				this.startPinging()
				break
			case "transcript":
				listener.onTranscript(frame.messages)
				for (const message of frame.messages) {
					if (message.role === "user") {
						this.outbox.delete(message.id)
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
					this.outbox.delete(frame.id)
				}
				listener.onMessage(frame)
				break
			case "error":
				this.lastError = frame
				listener.onRelayError(frame)
				break
			case "ended":
				this.ended = { notice: previous === "error" ? this.lastError : null }
				break
			case "interrupt":
				listener.onInterrupt()
		}
	},

	onClose(socket, { code }) {
		if (socket !== this.socket) {
			return
		}
		this.socket = null
		this.stopPinging()
		if (this.phase === "idle") {
			return // a start socket closed before its start: create opens another
		}
		const { moving, closeCodes } = this.config.relay
		const known = closeCodes[code]
		if ((code === moving || known === "restarting") && this.phase === "calling" && this.moves++ < 5) {
			this.early.unshift(this.startFrame)
			this.retryTimer = setTimeout(() => this.connect(socket.url), 250 * this.moves)
			return
		}
		if (code === 1000 && this.ended) {
			this.finish()
			this.listener.onEnded(this.ended.notice)
			return
		}
		if (!known && (this.phase === "live" || this.phase === "reconnecting") && this.startReconnecting(code === 1001)) {
			return
		}
		const starting = this.phase === "calling"
		const fromFrame = this.lastError?.code
		const reason = (starting || known === "upstream_failed") && fromFrame ? fromFrame : known || "dropped"
		this.finish()
		this.listener.onFailed(reason, this.lastError?.message, fromFrame === reason, starting)
	},

	finish() {
		clearTimeout(this.retryTimer)
		this.forget()
		this.failPending()
		this.phase = "idle"
		this.hangUp = false
	},

	startPinging() {
		this.stopPinging()
		this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS)
	},

	ping() {
		const socket = this.socket
		if (!socket || socket.readyState !== OPEN) {
			return
		}
		socket.send(JSON.stringify({ type: "ping", t: Date.now() }))
		clearTimeout(this.pongTimer)
		this.pongTimer = setTimeout(() => this.socket === socket && this.drop(socket), PONG_TIMEOUT_MS)
	},

	stopPinging() {
		clearInterval(this.pingTimer)
		clearTimeout(this.pongTimer)
	},

	drop(socket) {
		this.onClose(socket, { code: 1006 })
		socket.close(4000)
	},

	readSaved() {
		try {
			const saved = JSON.parse(this.env.sessionStorage.getItem(this.storageKey) || "null")
			if (saved && typeof saved.call === "string" && typeof saved.token === "string") {
				return saved
			}
		} catch {}
		return null
	},

	save() {
		const { resume, call, storageKey } = this
		try {
			if (resume && call && !this.hangUp) {
				const saved = { call, token: resume.token, seconds: resume.seconds, ...this.listener.session() }
				this.env.sessionStorage.setItem(storageKey, JSON.stringify(saved))
			} else {
				this.env.sessionStorage.removeItem(storageKey)
			}
		} catch {}
	},

	forget() {
		this.resume = null
		this.save()
	},

	resumeSaved(saved) {
		this.call = saved.call
		this.resume = { token: saved.token, seconds: Number(saved.seconds) || 0 }
		this.startReconnecting()
	},

	canResume() {
		return Boolean(this.resume?.token && this.call)
	},

	startReconnecting(later) {
		if (!this.canResume()) {
			return false
		}
		if (this.phase !== "reconnecting") {
			for (const [id, { text, sent }] of this.outbox) {
				if (sent) {
					this.queue(id, text)
				}
			}
			this.deadline = Date.now() + (this.resume?.seconds || 0) * 1000
			this.attempt = later ? 2 : 0
			this.phase = "reconnecting"
			this.listener.onReconnecting()
		}
		this.scheduleReconnect()
		return true
	},

	scheduleReconnect() {
		clearTimeout(this.retryTimer)
		const left = this.deadline - Date.now()
		if (left <= 0 && this.attempt > 0) {
			this.finish()
			this.listener.onLost()
			return
		}
		const base = RECONNECT_DELAYS_MS[Math.min(this.attempt, RECONNECT_DELAYS_MS.length - 1)]
		const delay = Math.max(0, Math.min(base * (0.8 + Math.random() * 0.4), left))
		this.attempt += 1
		this.retryTimer = setTimeout(() => this.tryReconnect(), delay)
	},

	tryReconnect() {
		if (this.phase !== "reconnecting" || !this.resume) {
			return
		}
		if (this.env.navigator.onLine === false) {
			this.scheduleReconnect()
			return
		}
		this.connect(`${this.config.relay.socket}${encodeURIComponent(this.resume.token)}/`)
	},

	handleEvent({ type, persisted }) {
		const { phase, socket } = this
		const resumable = this.canResume() && (phase === "live" || phase === "reconnecting")
		if (type === "pagehide") {
			if (resumable) {
				this.save()
				clearTimeout(this.retryTimer)
				this.stopPinging()
				this.socket = null
				socket?.close()
			} else if (this.isOpen()) {
				this.sendJson({ type: "end" })
				socket?.close(1000)
			}
		} else if (type === "pageshow" && persisted && resumable && !socket) {
			this.startReconnecting()
		} else if (type === "offline" && phase === "live" && socket && resumable) {
			this.drop(socket)
		} else if (type === "online" && phase === "reconnecting" && !socket) {
			clearTimeout(this.retryTimer)
			this.tryReconnect()
		}
	},
})
