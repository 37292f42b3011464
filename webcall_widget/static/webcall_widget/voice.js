// A voice call's audio (docs/widget.md)
const PLAYBACK_PREBUFFER_MS = 100
const SOUND_WAIT_MS = 2000
const EARLY_FRAMES = 250

/** @type {Record<string, string>} */
const MICROPHONE_ERRORS = {
	NotAllowedError: "mic_denied",
	SecurityError: "mic_denied",
	NotFoundError: "mic_missing",
	OverconstrainedError: "mic_missing",
	NotReadableError: "mic_busy",
	AbortError: "mic_busy",
}

export const voiceSupported = () => Boolean(window.AudioContext && window.AudioWorkletNode)

// Synchronously in the click: iOS Safari starts audio only from a user gesture.
/** @type {VoiceFactory} */
export const createVoice = (config, listener) => {
	const context = new AudioContext()
	context.resume().catch(() => {})
	const onVisibility = () => {
		if (document.visibilityState === "visible" && !voice.closed) {
			voice.holdWakeLock()
		}
	}
	/** @type {Voice} */
	const voice = {
		config,
		listener,
		context,
		stream: null,
		source: null,
		capture: null,
		playback: null,
		muted: false,
		speaking: false,
		wakeLock: null,
		closed: false,
		capturing: false,
		late: false,
		resumed: false,
		early: [],
		ready: context.audioWorklet
			.addModule(config.assets.worklet)
			.then(() => voice.startPlayback())
			.catch(() => "audio_failed"),

		async start() {
			const media = navigator.mediaDevices
			if (!media?.getUserMedia) {
				return window.isSecureContext ? "mic_missing" : "mic_insecure"
			}
			let stream
			try {
				stream = this.stream = await media.getUserMedia({ audio: { channelCount: 1, ...this.config.microphone } })
			} catch (error) {
				return MICROPHONE_ERRORS[error?.name] || "audio_failed"
			}
			this.ready = this.ready.then((failed) => failed || this.startCapture(stream)).catch(() => "audio_failed")
			return null
		},

		startPlayback() {
			this.playback = new AudioWorkletNode(this.context, "webcall-playback", {
				numberOfInputs: 0,
				outputChannelCount: [1],
				processorOptions: { sourceRate: this.config.audio.outputRate, prebufferMs: PLAYBACK_PREBUFFER_MS },
			})
			this.playback.port.onmessage = (event) => this.fromPlayback(event.data)
			this.playback.connect(this.context.destination)
			for (const buffer of this.early.splice(0)) {
				this.play(buffer)
			}
			return null
		},

		startCapture(stream) {
			if (this.closed) {
				this.stopTracks()
				return null
			}
			this.source = this.context.createMediaStreamSource(stream)
			this.capture = new AudioWorkletNode(this.context, "webcall-capture", {
				processorOptions: { targetRate: this.config.audio.inputRate, frameMs: this.config.audio.frameMs },
			})
			this.capture.port.onmessage = (event) => this.fromCapture(event.data)
			this.source.connect(this.capture)
			// silent, but connected so that it renders in every browser
			this.capture.connect(this.context.destination)
			this.holdWakeLock()
			document.addEventListener("visibilitychange", onVisibility)
			return null
		},

		resume() {
			this.context.resume().catch(() => {})
			setTimeout(() => {
				this.resumed = true
				this.listener.onChange()
			}, 1000)
		},

		fromCapture(message) {
			if (message.type === "frame") {
				if (!this.closed) {
					this.listener.onFrame(message.pcm)
				}
			} else if (message.type === "level") {
				if (!this.capturing) {
					this.capturing = true
					this.listener.onChange()
				}
				this.listener.onLevel(this.muted ? 0 : message.rms)
			}
		},

		fromPlayback(message) {
			if (message.type === "speaking") {
				this.speaking = message.speaking
				this.listener.onChange()
			}
		},

		play(buffer) {
			if (this.playback && !this.closed) {
				this.playback.port.postMessage({ type: "push", pcm: buffer }, [buffer])
			} else if (this.early.length < EARLY_FRAMES) {
				this.early.push(buffer)
			}
		},

		interrupt() {
			this.playback?.port.postMessage({ type: "clear" })
		},

		setMuted(muted) {
			this.muted = muted
			for (const track of this.stream?.getAudioTracks() || []) {
				track.enabled = !muted
			}
		},

		holdWakeLock() {
			if ("wakeLock" in navigator && (!this.wakeLock || this.wakeLock.released)) {
				navigator.wakeLock.request("screen").then(
					(lock) => {
						this.wakeLock = lock
						if (this.closed) {
							lock.release()
						}
					},
					() => {},
				)
			}
		},

		stopTracks() {
			for (const track of this.stream?.getTracks() || []) {
				track.stop()
			}
		},

		async close() {
			if (this.closed) {
				return
			}
			this.closed = true
			document.removeEventListener("visibilitychange", onVisibility)
			this.stopTracks()
			for (const node of [this.capture, this.playback]) {
				if (node) {
					node.port.postMessage({ type: "stop" })
					node.disconnect()
				}
			}
			this.source?.disconnect()
			this.wakeLock?.release()
			if (this.context.state !== "closed") {
				await this.context.close().catch(() => {})
			}
		},
	}
	context.onstatechange = () => listener.onChange()
	setTimeout(() => {
		voice.late = true
		listener.onChange()
	}, SOUND_WAIT_MS)
	return voice
}
