// The audio worklet (docs/widget.md)
const LEVEL_INTERVAL_S = 0.05
const GAP_S = 0.25

/** @type {LowPass} */
const lowPass = (cutoff, rate) => {
	const w = (2 * Math.PI * Math.min(cutoff, rate * 0.45)) / rate
	const alpha = Math.sin(w) / (2 * Math.SQRT1_2)
	const cos = Math.cos(w)
	const a0 = 1 + alpha
	const b0 = (1 - cos) / 2 / a0
	const b1 = (1 - cos) / a0
	const a1 = (-2 * cos) / a0
	const a2 = (1 - alpha) / a0
	let x1 = 0
	let x2 = 0
	let y1 = 0
	let y2 = 0
	return (samples) => {
		for (let i = 0; i < samples.length; i += 1) {
			const x = samples[i]
			const y = b0 * (x + x2) + b1 * x1 - a1 * y1 - a2 * y2
			x2 = x1
			x1 = x
			y2 = y1
			y1 = y
			samples[i] = y
		}
	}
}

class CaptureProcessor extends AudioWorkletProcessor {
	/** @param {CaptureOptions} options */
	constructor(options) {
		super()
		const { targetRate, frameMs } = options.processorOptions
		this.step = sampleRate / targetRate
		this.frameSamples = Math.round((targetRate * frameMs) / 1000)
		this.frame = new Int16Array(this.frameSamples)
		this.filled = 0
		this.position = 0
		this.previous = 0
		const cutoff = targetRate * 0.45
		// twice, for a steeper slope
		this.filters = targetRate < sampleRate ? [lowPass(cutoff, sampleRate), lowPass(cutoff, sampleRate)] : []
		this.filtered = new Float32Array(128)
		this.levelSum = 0
		this.levelCount = 0
		this.levelEvery = Math.round(sampleRate * LEVEL_INTERVAL_S)
		this.running = true
		this.port.onmessage = (event) => {
			if (event.data && event.data.type === "stop") {
				this.running = false
			}
		}
	}

	/** @param {Float32Array[][]} inputs */
	process(inputs) {
		const channel = inputs[0]?.[0]
		if (!channel) {
			return this.running
		}
		if (this.filtered.length !== channel.length) {
			this.filtered = new Float32Array(channel.length)
		}
		const samples = this.filtered
		samples.set(channel)
		for (const filter of this.filters) {
			filter(samples)
		}
		for (let i = 0; i < channel.length; i += 1) {
			this.levelSum += channel[i] * channel[i]
		}
		this.levelCount += channel.length
		if (this.levelCount >= this.levelEvery) {
			this.port.postMessage({ type: "level", rms: Math.sqrt(this.levelSum / this.levelCount) })
			this.levelSum = 0
			this.levelCount = 0
		}
		const last = samples.length - 1
		let t = this.position
		while (t < last) {
			const i = Math.floor(t)
			const a = i < 0 ? this.previous : samples[i]
			const b = samples[i + 1]
			const value = a + (b - a) * (t - i)
			this.frame[this.filled] = value >= 1 ? 32767 : value <= -1 ? -32768 : Math.round(value * 32767)
			this.filled += 1
			if (this.filled === this.frameSamples) {
				const buffer = this.frame.buffer
				this.port.postMessage({ type: "frame", pcm: buffer }, [buffer])
				this.frame = new Int16Array(this.frameSamples)
				this.filled = 0
			}
			t += this.step
		}
		this.position = t - samples.length
		this.previous = samples[last]
		return this.running
	}
}

class PlaybackProcessor extends AudioWorkletProcessor {
	/** @param {PlaybackOptions} options */
	constructor(options) {
		super()
		const { sourceRate, prebufferMs } = options.processorOptions
		this.step = sourceRate / sampleRate
		this.prebuffer = Math.round((sourceRate * prebufferMs) / 1000)
		this.growBy = Math.round(sourceRate * 0.04)
		this.maxPrebuffer = Math.round(sourceRate * 0.3)
		/** @type {Int16Array[]} */
		this.chunks = []
		this.queued = 0
		this.offset = 0
		this.playing = false
		this.speaking = false
		this.waitedBlocks = 0
		this.underruns = 0
		this.dryAt = null
		this.played = 0
		this.running = true
		this.port.onmessage = (event) => this.onMessage(event.data)
	}

	/** @param {PlaybackCommand} message */
	onMessage(message) {
		if (message.type === "push") {
			const chunk = new Int16Array(message.pcm)
			if (this.dryAt !== null && currentFrame - this.dryAt < GAP_S * sampleRate) {
				this.underruns += 1
				this.prebuffer = Math.min(this.maxPrebuffer, this.prebuffer + this.growBy)
			}
			this.dryAt = null
			this.chunks.push(chunk)
			this.queued += chunk.length
			this.waitedBlocks = 0
		} else if (message.type === "clear") {
			this.chunks = []
			this.queued = 0
			this.offset = 0
			this.playing = false
			this.dryAt = null
			this.setSpeaking(false)
		} else if (message.type === "stats") {
			this.port.postMessage({ type: "stats", underruns: this.underruns, played: this.played, speaking: this.speaking })
		} else if (message.type === "stop") {
			this.running = false
		}
	}

	setSpeaking(speaking = false) {
		if (speaking !== this.speaking) {
			this.speaking = speaking
			this.port.postMessage({ type: "speaking", speaking })
		}
	}

	sample(index = 0) {
		let chunk = 0
		let at = index
		while (chunk < this.chunks.length && at >= this.chunks[chunk].length) {
			at -= this.chunks[chunk].length
			chunk += 1
		}
		return chunk < this.chunks.length ? this.chunks[chunk][at] / 32768 : 0
	}

	/** @param {unknown} _inputs @param {Float32Array[][]} outputs */
	process(_inputs, outputs) {
		const output = outputs[0][0]
		if (!this.playing) {
			this.waitedBlocks += 1
			const waitedSamples = this.waitedBlocks * output.length * this.step
			if (this.queued > 0 && (this.queued >= this.prebuffer || waitedSamples >= this.prebuffer)) {
				this.playing = true
				this.setSpeaking(true)
			}
		}
		if (!this.playing) {
			output.fill(0)
			return this.running
		}
		for (let i = 0; i < output.length; i += 1) {
			const needed = Math.floor(this.offset) + 1
			if (this.queued - needed < 1) {
				output.fill(0, i)
				this.consume(this.queued) // the last sample cannot be interpolated: drop it
				this.offset = 0
				this.playing = false
				this.waitedBlocks = 0
				this.dryAt = currentFrame + i
				this.setSpeaking(false)
				break
			}
			const j = Math.floor(this.offset)
			const a = this.sample(j)
			const b = this.sample(j + 1)
			const value = a + (b - a) * (this.offset - j)
			output[i] = value
			this.offset += this.step
			const whole = Math.floor(this.offset)
			if (whole > 0) {
				this.consume(whole)
				this.offset -= whole
			}
		}
		return this.running
	}

	consume(count = 0) {
		let left = count
		this.played += count
		this.queued -= count
		while (left > 0 && this.chunks.length) {
			const first = this.chunks[0]
			if (first.length <= left) {
				left -= first.length
				this.chunks.shift()
			} else {
				this.chunks[0] = first.subarray(left)
				left = 0
			}
		}
	}
}

registerProcessor("webcall-capture", CaptureProcessor)
registerProcessor("webcall-playback", PlaybackProcessor)
