// The Connection's call, reconnect and resume state machine, on a fake socket and virtual time.
import assert from "node:assert/strict"
import { afterEach, beforeEach, mock, test } from "node:test"

import { createConnection } from "../../webcall_widget/static/webcall_widget/connection.js"
import { config, FakeSocket, FakeStorage, recorder, RELAY, START } from "./fakes.mjs"

const KEY = "webcall-widget:https://site.example/webcall/agents/help/config"
const READY = {
	type: "ready",
	call: "call-1",
	mode: "text",
	audio: null,
	resume: { token: "token-1", seconds: 20 },
	resumed: false,
}

beforeEach(() => {
	mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000 })
})

afterEach(() => {
	mock.timers.reset()
	mock.restoreAll()
})

function setup({ storage = new FakeStorage(), onLine = true } = {}) {
	FakeSocket.made = []
	const { listener, calls, names } = recorder()
	const navigator = { onLine }
	const env = { WebSocket: FakeSocket, sessionStorage: storage, navigator }
	const connection = createConnection(config, KEY, listener, env)
	return { connection, calls, names, storage, navigator, sockets: FakeSocket.made }
}

/** A call started on the start socket, ready with a resume token (20 s). */
async function live(options) {
	const t = setup(options)
	t.connection.create("text")
	const socket = t.sockets[0]
	socket.open()
	socket.receive(READY)
	socket.sent.splice(0) // the start frame: what follows is the live call's
	return { ...t, socket }
}

const frames = (socket) => socket.sent.filter((data) => typeof data === "string").map((data) => JSON.parse(data))

/** The socket drops (no close code the config names), as when the network goes. */
function dropped(socket) {
	socket.closed(1006)
}

/**
 * Virtual time, a millisecond at a time: node 20's mock.timers.tick(n) runs the timers due within n ms with
 * Date.now() already n ms on, so a timer set by another would start late.
 */
function tick(ms) {
	mock.timers.tick(0)
	for (let i = 0; i < ms; i += 1) {
		mock.timers.tick(1)
	}
}
const saved = (storage) => JSON.parse(storage.getItem(KEY))

/** Lets `ms` go by while every attempt to reconnect fails as soon as it is made. */
function failingAttempts(sockets, ms) {
	for (let waited = 0; waited < ms; waited += 1) {
		tick(1)
		const last = sockets.at(-1)
		if (last.readyState === 0) {
			last.closed(1006)
		}
	}
}

// Creating the call

test("prepare opens the start socket, once, and only with no call", () => {
	const { connection, sockets } = setup()
	connection.prepare()
	connection.prepare()
	assert.deepEqual(
		sockets.map((socket) => socket.url),
		[START],
	)
	assert.equal(sockets[0].binaryType, "arraybuffer")
	assert.equal(connection.phase, "idle")
})

test("create on an open start socket sends the start frame at once", () => {
	const { connection, sockets } = setup()
	connection.prepare()
	sockets[0].open()
	connection.create("TextAudio")
	assert.equal(connection.phase, "calling")
	assert.deepEqual(frames(sockets[0]), [{ type: "start", mode: "TextAudio" }])
})

test("create with no start socket opens one and starts as soon as it is open", () => {
	const { connection, sockets } = setup()
	connection.create("text")
	assert.equal(sockets.length, 1)
	assert.deepEqual(frames(sockets[0]), [])
	sockets[0].open()
	assert.deepEqual(frames(sockets[0]), [{ type: "start", mode: "text" }])
})

test("audio captured before the start waits behind the start frame", () => {
	const { connection, sockets } = setup()
	connection.prepare()
	sockets[0].open()
	connection.sendAudio(new ArrayBuffer(4)) // the microphone starts before the call
	assert.equal(sockets[0].sent.length, 0)
	connection.create("WebAudio")
	assert.equal(typeof sockets[0].sent[0], "string")
	assert.equal(sockets[0].sent[1].byteLength, 4)
})

test("a start socket the server closes before any start is no failure", () => {
	const { connection, sockets, calls } = setup()
	connection.prepare()
	sockets[0].open()
	sockets[0].closed(4408)
	assert.deepEqual(calls, [])
	connection.create("text")
	assert.equal(sockets.length, 2)
})

test("a refused start fails with the error frame's code, and may be tried again", () => {
	const { connection, sockets, calls } = setup()
	connection.create("text")
	sockets[0].open()
	sockets[0].receive({ type: "error", code: "agent_busy", message: "Busy.", retryAfter: 30 })
	sockets[0].closed(4429)
	assert.deepEqual(calls.at(-1), ["onFailed", "agent_busy", "Busy.", true, true])
	assert.equal(connection.phase, "idle")
})

test("abandoning keeps a start socket with no call for the next start", () => {
	const { connection, sockets } = setup()
	connection.prepare()
	sockets[0].open()
	connection.abandon()
	assert.equal(sockets[0].closedWith, null)
	connection.create("text")
	assert.equal(sockets.length, 1)
})

// Ready, resume tokens and pings

test("ready makes the call live and saves the resume token with the widget's session", async () => {
	const { connection, names, storage } = await live()
	assert.equal(connection.phase, "live")
	assert.deepEqual(names(), ["onReady"])
	assert.deepEqual(saved(storage), { call: "call-1", token: "token-1", seconds: 20, mode: "text", open: true })
})

test("a ready without a resume token forgets any saved call", async () => {
	const { socket, storage } = await live()
	socket.receive({ ...READY, resume: null })
	assert.equal(storage.getItem(KEY), null)
})

test("a resume frame replaces the token the next reconnect uses", async () => {
	const { socket, sockets, storage } = await live()
	socket.receive({ type: "resume", token: "token/2" })
	assert.equal(saved(storage).token, "token/2")
	dropped(socket)
	tick(0)
	assert.equal(sockets[1].url, `${RELAY}token%2F2/`)
})

test("a ping goes out every 25 s, and any frame within 10 s keeps the socket", async () => {
	const { socket, sockets } = await live()
	tick(24_999)
	assert.deepEqual(socket.frames(), [])
	tick(1)
	assert.deepEqual(socket.frames(), [{ type: "ping", t: 1_025_000 }])
	tick(9_000)
	socket.receive({ type: "pong", t: 1_025_000 })
	tick(5_000)
	assert.equal(socket.closedWith, null)
	assert.equal(sockets.length, 1)
})

test("no answer to a ping within 10 s drops the socket (4000) and reconnects", async () => {
	const { socket, sockets, names } = await live()
	tick(25_000 + 9_999)
	assert.equal(socket.closedWith, null)
	tick(1)
	assert.equal(socket.closedWith, 4000)
	assert.ok(names().includes("onReconnecting"))
	tick(0)
	assert.equal(sockets.length, 2)
	assert.equal(sockets[1].url, `${RELAY}token-1/`)
})

test("a socket still connecting after 8 s is closed, which counts as a drop", async () => {
	const { socket, sockets, names } = await live()
	dropped(socket)
	tick(0)
	const attempt = sockets[1]
	tick(7_999)
	assert.equal(attempt.closedWith, null)
	tick(1)
	assert.equal(attempt.closedWith, 1005)
	attempt.closed(1006)
	assert.equal(names().filter((name) => name === "onReconnecting").length, 1) // still the same reconnect
	tick(600)
	assert.equal(sockets.length, 3)
})

// Reconnecting

test("a dropped socket reconnects at once to the relay's URL for the resume token", async () => {
	const { socket, sockets, connection, names } = await live()
	dropped(socket)
	assert.equal(connection.phase, "reconnecting")
	assert.deepEqual(names(), ["onReady", "onReconnecting"])
	tick(0)
	assert.deepEqual(
		sockets.map((s) => s.url),
		[START, `${RELAY}token-1/`],
	)
	sockets[1].open()
	sockets[1].receive({ ...READY, resumed: true, resume: { token: "token-2", seconds: 20 } })
	assert.equal(connection.phase, "live")
	assert.deepEqual(names(), ["onReady", "onReconnecting", "onReady"])
})

for (const [random, factor] of [
	[0, 0.8],
	[0.5, 1],
	[0.999, 1.2],
]) {
	test(`failed attempts back off at once, then 0.5, 1, 2, 4 and 4 s, times ${factor} (jitter)`, async () => {
		mock.method(Math, "random", () => random)
		const { socket, sockets } = await live()
		dropped(socket)
		tick(0)
		assert.equal(sockets.length, 2, "the first attempt at once")
		for (const base of [500, 1000, 2000, 4000, 4000]) {
			const delay = Math.ceil(base * (0.8 + random * 0.4))
			assert.ok(Math.abs(delay - base * factor) <= 2)
			const attempts = sockets.length
			sockets.at(-1).closed(1006)
			tick(delay - 1)
			assert.equal(sockets.length, attempts, `no attempt before ${delay} ms`)
			tick(1)
			assert.equal(sockets.length, attempts + 1, `an attempt at ${delay} ms`)
		}
	})
}

test("past the resume deadline the call is lost: storage forgotten, what was typed not sent", async () => {
	const { socket, sockets, connection, calls, names, storage } = await live()
	dropped(socket)
	connection.sendText("are you there?")
	const [, id] = calls.find(([name]) => name === "onPending")
	failingAttempts(sockets, 19_000)
	assert.equal(connection.phase, "reconnecting", "still trying before the deadline (20 s)")
	failingAttempts(sockets, 5_000)
	assert.equal(connection.phase, "idle")
	assert.deepEqual(calls.slice(-2), [["onUnsent", id], ["onLost"]])
	assert.equal(storage.getItem(KEY), null)
	const attempts = sockets.length
	tick(60_000)
	assert.equal(sockets.length, attempts)
})

test("while the browser is offline, attempts wait; coming online tries at once", async () => {
	const { socket, sockets, connection, navigator } = await live()
	navigator.onLine = false
	connection.handleEvent({ type: "offline" })
	assert.equal(socket.closedWith, 4000, "a live socket is given up at once")
	assert.equal(connection.phase, "reconnecting")
	tick(5_000)
	assert.equal(sockets.length, 1)
	navigator.onLine = true
	connection.handleEvent({ type: "online" })
	assert.equal(sockets.length, 2)
})

// Close codes

for (const [code, reason] of [
	[1012, "restarting"],
	[4409, "token_used"],
	[4410, "taken_over"],
	[4401, "bad_token"],
]) {
	test(`a close with ${code} fails the call with ${reason} and does not reconnect`, async () => {
		const { socket, sockets, connection, calls, storage } = await live()
		socket.closed(code)
		tick(10_000)
		assert.equal(sockets.length, 1)
		assert.equal(connection.phase, "idle")
		assert.deepEqual(calls.at(-1), ["onFailed", reason, undefined, false, false])
		assert.equal(storage.getItem(KEY), null)
	})
}

for (const [code, why] of [
	[4013, "sent on by a stopping server"],
	[1012, "closed by a server that stopped just after taking it"],
	[4012, "closed so by Daphne"],
]) {
	test(`a new call's socket ${why} (${code}) connects again to the same URL`, async () => {
		const { connection, sockets, calls } = setup()
		await connection.create("text")
		const first = sockets[0]
		first.open()
		first.closed(code)
		tick(250)
		assert.equal(sockets.length, 2)
		assert.equal(sockets[1].url, first.url)
		sockets[1].open()
		sockets[1].receive(READY)
		assert.equal(connection.phase, "live")
		assert.ok(!calls.some(([name]) => name === "onFailed"))
	})
}

test("a live call sent on by a stopping server (4013) resumes at once, without a word", async () => {
	const { socket, sockets, connection, calls } = await live()
	socket.closed(4013)
	tick(0)
	assert.equal(connection.phase, "reconnecting")
	assert.equal(sockets.length, 2)
	assert.ok(!calls.some(([name]) => name === "onFailed"))
})

test("a new call sent on again and again fails as dropped after five tries", async () => {
	const { connection, sockets, calls } = setup()
	await connection.create("text")
	for (let n = 0; n < 6; n += 1) {
		sockets.at(-1).closed(4013)
		tick(2000)
	}
	assert.equal(sockets.length, 6)
	assert.deepEqual(calls.at(-1).slice(0, 2), ["onFailed", "dropped"])
})

test("an ended frame then a normal close ends the call, with the error said just before as its notice", async () => {
	const { socket, sockets, calls } = await live()
	const error = { type: "error", code: "agent_hung_up", message: "The agent ended the call." }
	socket.receive(error)
	socket.receive({ type: "ended", reason: "agent" })
	socket.closed(1000)
	tick(10_000)
	assert.equal(sockets.length, 1)
	assert.deepEqual(calls.at(-1), ["onEnded", error])
})

test("an error frame long before ended is no notice", async () => {
	const { socket, calls } = await live()
	socket.receive({ type: "error", code: "too_long", message: "Shorter, please." })
	socket.receive({ type: "message", id: "a1", role: "agent", text: "Hi", final: true })
	socket.receive({ type: "ended", reason: "agent" })
	socket.closed(1000)
	assert.deepEqual(calls.at(-1), ["onEnded", null])
})

test("a normal close without an ended frame is a drop: it reconnects", async () => {
	const { socket, sockets, connection } = await live()
	socket.closed(1000)
	tick(0)
	assert.equal(connection.phase, "reconnecting")
	assert.equal(sockets.length, 2)
})

test("upstream_failed takes the code of the error frame before it, which was already said", async () => {
	const { socket, calls } = await live()
	socket.receive({ type: "error", code: "upstream_timeout", message: "The agent stopped answering." })
	socket.closed(4502)
	assert.deepEqual(calls.at(-1), ["onFailed", "upstream_timeout", "The agent stopped answering.", true, false])
})

test("a drop with nothing to resume with fails the call as dropped", async () => {
	const { socket, sockets, calls } = await live()
	socket.receive({ ...READY, resume: null })
	socket.closed(1006)
	tick(10_000)
	assert.equal(sockets.length, 1)
	assert.deepEqual(calls.at(-1), ["onFailed", "dropped", undefined, false, false])
})

// What the visitor types

test("text typed while reconnecting waits, and is sent once the replay has come", async () => {
	const { socket, sockets, connection, calls } = await live()
	dropped(socket)
	assert.equal(connection.sendText("  hello  "), "queued")
	const [, id, text] = calls.find(([name]) => name === "onPending")
	assert.equal(text, "hello")
	tick(0)
	const next = sockets[1]
	next.open()
	next.receive({ ...READY, resumed: true })
	assert.deepEqual(next.frames(), [], "nothing before the replay")
	next.receive({ type: "transcript", messages: [] })
	assert.deepEqual(next.frames(), [{ type: "text", text: "hello", id }])
})

test("sent but unconfirmed text is sent again after a reconnect, unless the replay has it", async () => {
	const { socket, sockets, connection, calls } = await live()
	assert.equal(connection.sendText("first"), "sent")
	assert.equal(connection.sendText("second"), "sent")
	const [first, second] = socket.frames()
	dropped(socket)
	assert.deepEqual(
		calls.filter(([name]) => name === "onPending").map(([, id]) => id),
		[first.id, second.id],
	)
	tick(0)
	const next = sockets[1]
	next.open()
	next.receive({ ...READY, resumed: true })
	next.receive({ type: "transcript", messages: [{ id: first.id, role: "user", text: "first", final: true }] })
	assert.deepEqual(next.frames(), [second])
})

test("text sent between a resumed ready and its replay is not sent twice", async () => {
	const { socket, sockets, connection } = await live()
	dropped(socket)
	connection.sendText("typed while away")
	tick(0)
	const next = sockets[1]
	next.open()
	next.receive({ ...READY, resumed: true })
	connection.sendText("typed just after")
	next.receive({ type: "transcript", messages: [] })
	assert.deepEqual(
		next.frames().map((frame) => frame.text),
		["typed just after", "typed while away"],
	)
})

test("a user message echoed by the relay is confirmed: a later drop does not send it again", async () => {
	const { socket, sockets, connection } = await live()
	connection.sendText("hello")
	const [sent] = socket.frames()
	socket.receive({ type: "message", id: sent.id, role: "user", text: "hello", final: true })
	dropped(socket)
	tick(0)
	sockets[1].open()
	sockets[1].receive({ ...READY, resumed: true })
	sockets[1].receive({ type: "transcript", messages: [] })
	assert.deepEqual(sockets[1].frames(), [])
})

test("text typed while the relay closes the socket waits, and is sent once the call is back", async () => {
	const { socket, sockets, connection, calls } = await live()
	socket.closing() // a stopping server sends the call on (4013); the close event comes later
	assert.equal(connection.canSend(), true)
	assert.equal(connection.sendText("typed as it closed"), "queued")
	socket.closed(4013)
	assert.equal(calls.filter(([name]) => name === "onPending").length, 1)
	tick(0)
	const next = sockets[1]
	next.open()
	next.receive({ ...READY, resumed: true })
	next.receive({ type: "transcript", messages: [] })
	assert.deepEqual(
		next.frames().map((frame) => frame.text),
		["typed as it closed"],
	)
})

test("a hang-up while the relay closes the socket is said once the call is back, which stays ending", async () => {
	const { socket, sockets, connection, calls } = await live()
	socket.closing() // a stopping server sends the call on (4013); the close event comes later
	connection.end()
	socket.closed(4013)
	tick(0)
	const next = sockets[1]
	next.open()
	next.receive({ ...READY, resumed: true })
	assert.deepEqual(next.frames(), [{ type: "end" }])
	assert.equal(connection.phase, "ending")
	assert.equal(calls.filter(([name]) => name === "onReady").length, 1)
	next.receive({ type: "ended", reason: "visitor-ended" })
	next.closed(1000)
	assert.deepEqual(calls.at(-1), ["onEnded", null])
})

test("a hang-up while reconnecting forgets the saved call at once and is said once the call is back", async () => {
	const { socket, sockets, connection, calls, storage } = await live()
	dropped(socket)
	connection.end()
	assert.equal(storage.getItem(KEY), null, "no other page takes the call up")
	tick(0)
	const next = sockets[1]
	assert.equal(next.url, `${RELAY}token-1/`)
	next.open()
	next.receive({ ...READY, resumed: true })
	assert.deepEqual(next.frames(), [{ type: "end" }])
	assert.equal(connection.phase, "ending")
	assert.equal(storage.getItem(KEY), null, "a ready after a hang-up saves nothing")
	next.receive({ type: "ended", reason: "visitor-ended" })
	next.closed(1000)
	assert.deepEqual(calls.at(-1), ["onEnded", null])
})

test("a page left after a hang-up while reconnecting leaves nothing to resume", async () => {
	const { socket, connection, storage } = await live()
	dropped(socket)
	connection.end()
	connection.handleEvent({ type: "pagehide" })
	assert.equal(storage.getItem(KEY), null)
})

test("a call after a hang-up goes live as any other", async () => {
	const { socket, sockets, connection } = await live()
	connection.end()
	socket.receive({ type: "ended", reason: "visitor-ended" })
	socket.closed(1000)
	connection.create("text")
	sockets.at(-1).open()
	sockets.at(-1).receive(READY)
	assert.equal(connection.phase, "live")
})

test("text typed while the relay closes the socket for good is marked not sent", async () => {
	const { socket, connection, calls } = await live()
	socket.receive({ type: "ended", reason: "agent-hangup" })
	socket.closing()
	assert.equal(connection.sendText("too late"), "queued")
	const [, id] = calls.find(([name]) => name === "onPending")
	socket.closed(1000)
	assert.deepEqual(
		calls.filter(([name]) => name === "onUnsent"),
		[["onUnsent", id]],
	)
})

test("text cannot be sent before the call is live, and is when it is", async () => {
	const { connection } = setup()
	assert.equal(connection.canSend(), false)
	const { connection: call } = await live()
	assert.equal(call.canSend(), true)
})

test("abandon closes the socket normally and forgets the call, telling the listener only what never arrived", async () => {
	const { socket, sockets, connection, calls, storage } = await live()
	connection.sendText("hello?")
	const before = calls.length
	connection.abandon()
	assert.equal(socket.closedWith, 1000)
	assert.equal(storage.getItem(KEY), null)
	assert.deepEqual(
		calls.slice(before).map(([name]) => name),
		["onUnsent"],
	)
	socket.closed(1000) // the browser's close event comes afterwards and changes nothing
	tick(10_000)
	assert.equal(calls.length, before + 1)
	assert.equal(sockets.length, 1)
})

// Audio

test("audio captured before the socket opens waits behind the start, at most the last 100 frames", async () => {
	const { connection, sockets } = setup()
	connection.create("WebAudio")
	const audio = Array.from({ length: 105 }, () => new ArrayBuffer(2))
	for (const frame of audio) {
		connection.sendAudio(frame)
	}
	sockets[0].open()
	const sent = sockets[0].sent
	assert.equal(sent.length, 100)
	assert.deepEqual(JSON.parse(sent[0]), { type: "start", mode: "WebAudio" })
	assert.equal(sent[1], audio[6])
	assert.equal(sent.at(-1), audio[104])
})

test("audio from the relay goes to the listener as it came", async () => {
	const { socket, calls } = await live()
	const pcm = new ArrayBuffer(640)
	socket.receive(pcm)
	assert.equal(calls.at(-1)[0], "onAudio")
	assert.equal(calls.at(-1)[1], pcm)
})

// The page

test("pagehide keeps a call that can be resumed, and ends one that cannot", async () => {
	const resumable = await live()
	resumable.connection.handleEvent({ type: "pagehide" })
	assert.equal(resumable.socket.closedWith, 1005, "let go, without an end")
	assert.deepEqual(resumable.socket.frames(), [])
	assert.equal(saved(resumable.storage).token, "token-1")

	const { connection, socket } = await live()
	socket.receive({ ...READY, resume: null })
	connection.handleEvent({ type: "pagehide" })
	assert.deepEqual(socket.frames(), [{ type: "end" }])
	assert.equal(socket.closedWith, 1000)
})

test("a page being left never reconnects: the next page takes the call up with the token", async () => {
	const { socket, sockets, connection, names } = await live()
	connection.handleEvent({ type: "pagehide" })
	socket.closed(1001) // Firefox reports the close while the page's timers still run
	tick(5_000)
	assert.equal(sockets.length, 1)
	assert.ok(!names().includes("onReconnecting"))
})

test("a socket closed as its page goes away (1001) waits a second for pagehide before it reconnects", async () => {
	const { socket, sockets, connection } = await live()
	socket.closed(1001) // Firefox, before pagehide
	tick(700)
	connection.handleEvent({ type: "pagehide" })
	tick(5_000)
	assert.equal(sockets.length, 1, "the page that went away never reconnected")

	const stays = await live()
	stays.socket.closed(1001) // a navigation that did not happen after all (a download)
	tick(1_300)
	assert.equal(stays.sockets.length, 2)
	assert.equal(stays.sockets[1].url, `${RELAY}token-1/`)
})

test("a page restored from the back-forward cache without its socket reconnects", async () => {
	const { socket, sockets, connection } = await live()
	connection.handleEvent({ type: "pagehide" })
	socket.closed(1001)
	connection.handleEvent({ type: "pageshow", persisted: true })
	tick(0)
	assert.equal(connection.phase, "reconnecting")
	assert.equal(sockets.length, 2)
})

test("a saved call is taken up: reconnecting with its token and its lifetime", () => {
	const storage = new FakeStorage()
	const { connection, sockets, names } = setup({ storage })
	connection.resumeSaved({ call: "call-9", token: "token-9", seconds: 5, mode: "text", open: false })
	assert.deepEqual(names(), ["onReconnecting"])
	tick(0)
	assert.equal(sockets[0].url, `${RELAY}token-9/`)
	failingAttempts(sockets, 4_000)
	assert.equal(connection.phase, "reconnecting")
	failingAttempts(sockets, 5_000)
	assert.equal(connection.phase, "idle", "given up after the saved call's 5 s")
})

test("storage that is refused or holds something else loses nothing but the resume", async () => {
	const storage = new FakeStorage()
	storage.setItem(KEY, "not json")
	const { connection } = setup({ storage })
	assert.equal(connection.readSaved(), null)
	storage.setItem(KEY, JSON.stringify({ call: 1, token: "t" }))
	assert.equal(connection.readSaved(), null)
	storage.refuses = true
	assert.equal(connection.readSaved(), null)
	const call = await live({ storage })
	assert.equal(call.connection.phase, "live")
})

test("a socket the browser refuses to make is a connect failure", () => {
	const { listener, names } = recorder()
	const env = {
		WebSocket: class {
			constructor() {
				throw new SyntaxError("bad URL")
			}
		},
		sessionStorage: new FakeStorage(),
		navigator: { onLine: true },
	}
	const connection = createConnection(config, KEY, listener, env)
	connection.connect("nonsense")
	assert.deepEqual(names(), ["onConnectFailed"])
	assert.equal(connection.phase, "idle")
})
