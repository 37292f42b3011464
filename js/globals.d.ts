// Types for the widget's hand-written JavaScript (checked by `make check`, never shipped). Each of the app's
// modules exports a factory of one object whose shape is declared here, so the shipped files carry no types.

type Mode = "text" | "WebAudio" | "TextAudio"
type WidgetState = "idle" | "connecting" | "live" | "reconnecting" | "ending" | "ended" | "error"

/** What webcall_widget.views._widget_config answers. */
interface WebcallWidgetConfig {
	protocol: number
	language: string
	dir: string
	strings: { ui: Record<string, string>; errors: Record<string, string> }
	maxTextLength: number
	audio: { format: string; inputRate: number; outputRate: number; frameMs: number }
	microphone: { echoCancellation: boolean; noiseSuppression: boolean; autoGainControl: boolean }
	agent: {
		slug: string
		name: string
		title: string
		subtitle: string
		avatarUrl: string
		greeting: string
		launcherLabel: string
		position: string
		colors: { primary: string; onPrimary: string }
	}
	modes: Mode[]
	defaultMode: Mode
	createCallUrl: string
	/** app: the entry module; modules: every module it imports, directly or not (fetched at once). */
	assets: { launcherCss: string; css: string; app: string; modules: string[]; worklet: string }
	/** socket: the relay's URL before a token; start: the agent's start socket; closeCodes: close
	 * code -> error code; moving: the code of a server that stops (the call goes on elsewhere:
	 * connect again, or resume). */
	relay: { socket: string; start: string; closeCodes: Record<string, string>; moving: number }
}

// Frames from the relay (webcall_widget/relay/protocol.py).
interface TranscriptMessage {
	id: string
	role: "agent" | "user"
	text: string
	final: boolean
}
interface RelayError {
	type: "error"
	code: string
	message: string
	/** A start refused by a limit: seconds until one may be taken. */
	retryAfter?: number
}
interface ReadyFrame {
	type: "ready"
	call: string
	mode: Mode
	audio: { format: string; inputRate: number; outputRate: number } | null
	resume: { token: string; seconds: number } | null
	resumed?: boolean
}
type RelayFrame =
	| ReadyFrame
	| { type: "transcript"; messages: TranscriptMessage[] }
	| { type: "resume"; token: string }
	| ({ type: "message" } & TranscriptMessage)
	| RelayError
	| { type: "ended"; reason: string }
	| { type: "interrupt" }
	| { type: "pong"; t: number }

// connection.js

/** What a Connection uses of the browser beyond JavaScript's own: globalThis there, fakes in js/test/. */
type ConnectionEnv = Pick<typeof globalThis, "WebSocket" | "sessionStorage" | "navigator">

/** The link to the relay: one conversation's socket, whatever the page shows. */
interface Connection {
	config: WebcallWidgetConfig
	storageKey: string
	listener: ConnectionListener
	env: ConnectionEnv
	socket: WebSocket | null
	/** "calling" from the start frame to ready, "ending" once the visitor hung up. */
	phase: "idle" | "calling" | "live" | "reconnecting" | "ending"
	call: string | null
	resume: { token: string; seconds: number } | null
	/** What the visitor typed and the relay has not confirmed yet: sent on this socket, or waiting to be. */
	outbox: Map<string, { text: string; sent: boolean }>
	/** What waits for the socket to open, or for the call to start: the start frame, audio. */
	early: (ArrayBuffer | string)[]
	/** The start frame, sent again to another process when a stopping one sent it on. */
	startFrame: string
	pingTimer: number
	pongTimer: number
	retryTimer: number
	attempt: number
	deadline: number
	/** Times a new call's socket was sent on by a stopping server (4013) and tried again. */
	moves: number
	/** Set by an `ended` frame; notice: the error frame said just before it. */
	ended: { notice: RelayError | null } | null
	/** The visitor hung up: the end is said on the open socket, or on the call's next ready. */
	hangUp: boolean
	lastError: RelayError | null
	previousFrame: string | null
	isOpen(): boolean
	sendJson(frame: object): void
	/** Opens the start socket, when there is neither a socket nor a call. */
	prepare(): void
	/** Starts the call on the start socket: what goes wrong comes back as frames and a close. */
	create(mode: Mode): void
	flush(): void
	connect(url: string): void
	sendAudio(pcm: ArrayBuffer): void
	dropAudio(): void
	canSend(): boolean
	sendText(text: string): "sent" | "queued"
	queue(id: string, text: string): void
	flushOutbox(): void
	failPending(): void
	end(): void
	/** Gives the call up without a word to the listener. */
	abandon(): void
	reset(): void
	onFrame(event: { data: string | ArrayBuffer }): void
	onClose(socket: WebSocket, event: { code: number }): void
	finish(): void
	startPinging(): void
	ping(): void
	stopPinging(): void
	drop(socket: WebSocket): void
	readSaved(): SavedCall | null
	save(): void
	forget(): void
	resumeSaved(saved: SavedCall): void
	canResume(): boolean
	/** `later`: the first try after about a second, not at once */
	startReconnecting(later?: boolean): boolean
	scheduleReconnect(): void
	tryReconnect(): void
	/** The page's lifecycle and network events: pagehide, pageshow, offline, online. */
	handleEvent(event: { type: string; persisted?: boolean }): void
}
type ConnectionFactory = (
	config: WebcallWidgetConfig,
	storageKey: string,
	listener: ConnectionListener,
	env?: ConnectionEnv,
) => Connection

/** What the Connection tells the widget. */
interface ConnectionListener {
	session(): { mode: Mode | null; open: boolean }
	onReady(frame: ReadyFrame): void
	onTranscript(messages: TranscriptMessage[]): void
	onMessage(message: TranscriptMessage): void
	onRelayError(frame: RelayError): void
	onAudio(buffer: ArrayBuffer): void
	onInterrupt(): void
	onPending(id: string, text: string): void
	onUnsent(id: string): void
	onReconnecting(): void
	onEnded(notice: RelayError | null): void
	/** said: the error frame before the close already said it (a webcall:error went out);
	 * starting: the call never started (it may be tried again). */
	onFailed(reason: string, message: string | undefined, said: boolean, starting: boolean): void
	onLost(): void
	onConnectFailed(): void
}

interface SavedCall {
	call: string
	token: string
	seconds: number
	mode: Mode | null
	open: boolean
}

// voice.js

/** One voice session: microphone -> capture worklet -> listener, and playback worklet -> speakers. */
interface Voice {
	config: WebcallWidgetConfig
	listener: VoiceListener
	context: AudioContext
	stream: MediaStream | null
	source: MediaStreamAudioSourceNode | null
	capture: AudioWorkletNode | null
	playback: AudioWorkletNode | null
	muted: boolean
	speaking: boolean
	wakeLock: WakeLockSentinel | null
	closed: boolean
	/** No sound yet, a while after the click (SOUND_WAIT_MS). */
	late: boolean
	/** The visitor asked for the sound (resume()) a second ago, in vain if it is not running. */
	resumed: boolean
	/** Agent audio that came before the speakers were there. */
	early: ArrayBuffer[]
	/** The worklet and the speakers, then (once start() was answered) the microphone's node: an error code, or
	 * null. It starts loading at once. */
	ready: Promise<string | null>
	/** The microphone's sound reaches the call (Firefox's comes a while after its node). */
	capturing: boolean
	/** Asks for the microphone (again, after a refusal): an error code, or null. Its node comes with `ready`. */
	start(): Promise<string | null>
	startPlayback(): null
	startCapture(stream: MediaStream): null
	/** In a click: the sound a browser held back (a suspended AudioContext). */
	resume(): void
	fromCapture(message: CaptureMessage): void
	fromPlayback(message: PlaybackMessage): void
	play(buffer: ArrayBuffer): void
	interrupt(): void
	setMuted(muted: boolean): void
	holdWakeLock(): void
	stopTracks(): void
	close(): Promise<void>
}
type VoiceFactory = (config: WebcallWidgetConfig, listener: VoiceListener) => Voice

/** What a Voice tells the widget. */
interface VoiceListener {
	onFrame(pcm: ArrayBuffer): void
	onLevel(rms: number): void
	/** What the visitor sees of the voice changed: the agent speaking or not, the sound, the microphone. */
	onChange(): void
}

// The worklet's messages (audio-worklet.js <-> voice.js).
type CaptureMessage = { type: "frame"; pcm: ArrayBuffer } | { type: "level"; rms: number }
interface PlaybackStats {
	type: "stats"
	underruns: number
	played: number
	speaking: boolean
}
type PlaybackMessage = { type: "speaking"; speaking: boolean } | PlaybackStats
/** What the widget posts to the playback processor. */
type PlaybackCommand = { type: "push"; pcm: ArrayBuffer } | { type: "clear" | "stats" | "stop" }
/** A biquad low-pass filter: it filters samples in place, block after block. */
type LowPass = (cutoff: number, rate: number) => (samples: Float32Array) => void
interface CaptureOptions {
	processorOptions: { targetRate: number; frameMs: number }
}
interface PlaybackOptions {
	processorOptions: { sourceRate: number; prebufferMs: number }
}

// panel.js

/** The panel: built once, rendered from its owner's state. */
interface Panel {
	isOpen: boolean
	lastAgentMessageId: string
	/** What is shown, from the state alone: render() and focusInside() both read it. */
	view(): {
		over: boolean
		start: boolean
		transcript: boolean
		composer: boolean
		typing: boolean
		voiceBar: boolean
		waiting: boolean
		mic: boolean
		restart: boolean
		footer: boolean
	}
	render(): void
	showLevel(rms: number): void
	showNotice(message: string, actions?: NoticeAction[]): void
	hideNotice(): void
	show(open: boolean, focus?: boolean): void
	focusInside(): void
	showMessage(message: TranscriptMessage, options?: { quiet?: boolean; pending?: boolean }): void
	/** Whether the transcript shows the message with this id, finished. */
	showsFinished(id: string): boolean
	mark(id: string, mark: MessageMark): void
	clear(): void
}
type PanelFactory = (shell: WebcallShell, kit: WebcallKit, owner: PanelOwner) => Panel

/** What the Panel reads of the widget, and the visitor's actions it hands to it. */
interface PanelOwner {
	state: WidgetState
	mode: Mode | null
	voice: Voice | null
	voicePending: boolean
	availableModes(): Mode[]
	start(mode: Mode): void
	close(): void
	end(): void
	restart(): void
	continueVoice(): void
	toggleMute(): void
	send(text: string): boolean
}

/** A message typed while the connection was away, never sent, or talked over by the visitor ("": none). */
type MessageMark = "pending" | "unsent" | "interrupted" | ""
type Button = (classes: string, children: Children, onClick: () => void, attributes?: Attributes) => HTMLElement
/** Sets an element's text, if it is another (a live region says it again otherwise). */
type SetText = (element: Node, text: string) => void
/** A notice's button: its text and what it does. */
type NoticeAction = [string, () => void]

// rich-text.js
type RichText = (h: H, text: string) => DocumentFragment

// widget-app.js

/** The widget: what the visitor does and sees of one conversation. */
interface Widget extends WebcallWidgetInstance, ConnectionListener, PanelOwner {
	/** For the browser tests. */
	readonly connection: Connection
	/** The voice of a call that was resumed by a page load waits for a click (browsers start audio only then). */
	voicePending: boolean
	start(mode?: Mode): Promise<void>
	send(text: unknown): boolean
	setState(state: WidgetState): void
	newVoice(): Voice | null
	/** The microphone's answer (the call is made then); a voice that fails later fails the call. */
	startVoice(voice: Voice): Promise<string | null>
	/** The call cannot go on without its voice. */
	voiceFailed(code: string): void
	/** A voice and text call goes on as text when the microphone is refused. */
	textInstead(code: string): boolean
	retryMicrophone(): Promise<void>
	continueVoice(): Promise<void>
	errorText(code: string, fallback?: string | null): string
	/** Says that the call failed (or ended) for `code`. */
	fail(code: string, how?: Failure): void
	restart(): void
	reset(): void
	releaseVoice(): void
	emitError(code: string, message?: string): void
	emit(name: string, detail: object): void
}

/** How the widget says a call failed: actions, or retry (in the same mode); the state it goes to; said: the
 * relay's error frame already dispatched webcall:error. */
interface Failure {
	message?: string | null
	actions?: NoticeAction[]
	retry?: boolean
	state?: WidgetState
	said?: boolean
}

// Between the embed script (widget.js) and the app's modules.
type Attributes = Record<string, string | number | boolean | null | undefined>
type Children = (Node | string | false | null | undefined)[]
/** The API's commands, called by name on a Shell or its Widget. */
/** The API's commands, called by name (any: a Shell or a Widget is cast to it). */
type Commands = any
interface WebcallKit {
	/** An element: `tag` may name classes too ("div.header"); attributes are set as text, children appended. */
	h<K extends keyof HTMLElementTagNameMap>(
		tag: K | `${K}.${string}`,
		attributes?: Attributes,
		children?: Children,
	): HTMLElementTagNameMap[K]
	h(tag: string, attributes?: Attributes, children?: Children): HTMLElement
	icon(d: string, outline?: boolean): SVGSVGElement
}
/** The launcher's element builder, which the app's modules share. */
type H = WebcallKit["h"]
interface WebcallShell {
	slug: string
	storageKey: string
	config: WebcallWidgetConfig
	host: HTMLElement
	shadow: ShadowRoot
	root: HTMLElement
	launcher: HTMLElement
}
interface WebcallWidgetInstance {
	state: WidgetState
	open(options?: { focus?: boolean }): void
	close(): void
	toggle(): void
	start(mode?: Mode): Promise<void>
	end(): void
	send(text: unknown): boolean
}

interface WebcallApi {
	version: string
	[command: string]: any
	get(slug?: string): unknown
	on(name: string, listener: (detail: unknown, event: Event) => void): () => void
	push(...commands: unknown[]): number
	/** The app's modules, imported once for every widget on the page; the entry first. */
	_app?: Promise<{ mount(shell: WebcallShell, kit: WebcallKit): WebcallWidgetInstance }[]>
}

interface Window {
	WebcallWidget: WebcallApi
}

// The AudioWorklet global scope (audio-worklet.js), which lib.dom does not describe.
declare class AudioWorkletProcessor {
	readonly port: MessagePort
	constructor(options?: any)
}
declare function registerProcessor(name: string, processor: new (options: any) => AudioWorkletProcessor): void
declare const sampleRate: number
declare const currentTime: number
declare const currentFrame: number
