// Types for the widget's hand-written JavaScript (checked by `make check`, never shipped).

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
	assets: { launcherCss: string; css: string; app: string; worklet: string }
	/** socket: the relay's URL before a token; closeCodes: close code -> error code. */
	relay: { socket: string; closeCodes: Record<string, string> }
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

interface SavedCall {
	call: string
	token: string
	seconds: number
	mode: Mode | null
	open: boolean
}

/** Connection.phase: "calling" while the create-call request is out, "ending" once the visitor hung up. */
type ConnectionPhase = "idle" | "calling" | "live" | "reconnecting" | "ending"

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
	onFailed(reason: string, message: string | undefined, alreadySaid: boolean): void
	onLost(): void
	onConnectFailed(): void
}

/** Outbox entries: typed while not connected, or sent and not yet confirmed. */
interface OutboxEntry {
	id: string
	text: string
}
/** A notice's button: its text and what it does. */
type NoticeAction = [string, () => void]

// The worklet's messages (audio-worklet.js <-> widget-app.js's Voice).
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
interface CaptureOptions {
	processorOptions: { targetRate: number; frameMs: number }
}
interface PlaybackOptions {
	processorOptions: { sourceRate: number; prebufferMs: number }
}

// Between the embed script (widget.js) and the app (widget-app.js).
type Attributes = Record<string, string | number | boolean | null | undefined>
type Children = (Node | string | false | null | undefined)[]
/** The API's commands, called by name on a Shell or its Widget. */
type Commands = Record<string, (...args: unknown[]) => unknown>
interface WebcallKit {
	h<K extends keyof HTMLElementTagNameMap>(
		tag: K,
		attributes?: Attributes,
		children?: Children,
	): HTMLElementTagNameMap[K]
	h(tag: string, attributes?: Attributes, children?: Children): HTMLElement
	icon(d: string, outline?: boolean): SVGSVGElement
}
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
type WebcallApp = (shell: WebcallShell, kit: WebcallKit) => WebcallWidgetInstance

interface WebcallApi {
	version: string
	[command: string]: any
	get(slug?: string): unknown
	on(name: string, listener: (detail: unknown, event: Event) => void): () => void
	push(...commands: unknown[]): number
	/** The app script, loaded once for every widget on the page; it sets _mount. */
	_app?: Promise<WebcallApp>
	_mount?: WebcallApp
}

interface Window {
	WebcallWidget: WebcallApi
	webkitAudioContext?: typeof AudioContext
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
