// What a Connection uses of the browser, faked for node --test (a Connection takes them as its env):
// a WebSocket the test opens, feeds and closes by hand, sessionStorage and navigator.onLine.
// Timers and Date are node:test's mock.timers.

export const RELAY = "wss://site.example/webcall/socket/"
export const START = `${RELAY}start/help/`

/** The relay's close codes a test needs, as the config names them (views._close_code_errors). */
export const config = {
	relay: {
		socket: RELAY,
		start: START,
		moving: 4013,
		closeCodes: {
			1012: "restarting",
			4012: "restarting",
			4401: "bad_token",
			4409: "token_used",
			4410: "taken_over",
			4502: "upstream_failed",
		},
	},
}

export class FakeSocket {
	/** Every socket made, in order. */
	static made = []

	constructor(url) {
		this.url = url
		this.readyState = 0
		this.binaryType = "blob"
		this.sent = []
		this.closedWith = null
		this.listeners = {}
		FakeSocket.made.push(this)
	}

	addEventListener(type, listener) {
		;(this.listeners[type] ||= []).push(listener)
	}

	send(data) {
		if (this.readyState !== 1) {
			throw new Error(`send() on a socket in state ${this.readyState}`)
		}
		this.sent.push(data)
	}

	/** What the page asked for; the browser reports the close later (see closed()). */
	close(code = 1005) {
		this.closedWith = code
		this.readyState = 2
	}

	// What the browser and the relay do, driven by the test.

	open() {
		this.readyState = 1
		this.emit("open", {})
	}

	receive(frame) {
		this.emit("message", {
			data: typeof frame === "string" || frame instanceof ArrayBuffer ? frame : JSON.stringify(frame),
		})
	}

	/** The relay's close frame came: the browser answers it, and reports the close later (closed()). */
	closing() {
		this.readyState = 2
	}

	closed(code) {
		this.readyState = 3
		this.emit("close", { code })
	}

	/** The JSON frames the page sent. */
	frames() {
		return this.sent.filter((data) => typeof data === "string").map((data) => JSON.parse(data))
	}

	emit(type, event) {
		for (const listener of this.listeners[type] || []) {
			listener(event)
		}
	}
}

export class FakeStorage {
	constructor() {
		this.items = new Map()
		this.refuses = false
	}

	getItem(key) {
		this.check()
		return this.items.has(key) ? this.items.get(key) : null
	}

	setItem(key, value) {
		this.check()
		this.items.set(key, String(value))
	}

	removeItem(key) {
		this.check()
		this.items.delete(key)
	}

	check() {
		if (this.refuses) {
			throw new Error("SecurityError: storage is disabled")
		}
	}
}

/** Records what the Connection tells the widget: calls as [name, ...args]. */
export function recorder(session = { mode: "text", open: true }) {
	const calls = []
	const listener = new Proxy(
		{},
		{
			get: (_, name) => (name === "session" ? () => session : (...args) => calls.push([name, ...args])),
		},
	)
	return { listener, calls, names: () => calls.map(([name]) => name) }
}

/**
 * A fetch that answers every request with `status` and `body` (JSON) once the event loop turns (it is in
 * flight until then, and an abort fails it), and keeps the requests.
 */
