// The webcall widget's launcher (docs/widget.md)
;(() => {
	"use strict"

	const script = /** @type {HTMLScriptElement} */ (document.currentScript)
	if (!script) {
		return
	}
	const COMMANDS = ["open", "close", "toggle", "start", "end", "send"]

	/** @template {Element} E @param {E} element @param {Attributes} [attributes] */
	const set = (element, attributes) => {
		for (const [name, value] of Object.entries(attributes || {})) {
			if (value !== false && value != null) {
				element.setAttribute(name, value === true ? "" : String(value))
			}
		}
		return element
	}

	const h = /** @type {WebcallKit["h"]} */ (
		/** @param {string} tag @param {Attributes} [attributes] @param {Children} [children] */
		(tag, attributes, children) => {
			const [name, ...classes] = tag.split(".")
			const element = set(document.createElement(name), attributes)
			element.classList.add(...classes)
			element.append(.../** @type {(Node | string)[]} */ ((children || []).filter(Boolean)))
			return element
		}
	)

	/** @type {WebcallKit["icon"]} */
	const icon = (d, outline) => {
		const svg = set(document.createElementNS("http://www.w3.org/2000/svg", "svg"), {
			viewBox: "0 0 24 24",
			"aria-hidden": "true",
		})
		const path = set(document.createElementNS(svg.namespaceURI, "path"), {
			d,
			fill: outline ? "none" : "currentColor",
			stroke: "currentColor",
			"stroke-width": outline ? 2 : 1,
			"stroke-linecap": "round",
			"stroke-linejoin": "round",
		})
		svg.append(path)
		return svg
	}

	/** @param {HTMLLinkElement} link */
	const loaded = (link) =>
		new Promise((resolve) => {
			link.addEventListener("load", resolve)
			link.addEventListener("error", resolve) // unstyled beats invisible
		})

	class Shell {
		constructor() {
			const data = script.dataset
			const slug = data.agent || ""
			const configUrl =
				data.config ||
				(data.server && slug
					? `${data.server.replace(/\/+$/, "")}/webcall/agents/${encodeURIComponent(slug)}/config`
					: "")
			const url = configUrl ? new URL(configUrl, script.src || location.href) : null
			this.slug = slug
			this.configUrl = url
			this.storageKey = url ? `webcall-widget:${url.origin}${url.pathname}` : ""
			/** @type {?WebcallWidgetConfig} */
			this.config = null
			/** @type {?WebcallWidgetInstance} */
			this.widget = null
			/** @type {?Promise<WebcallWidgetInstance>} */
			this.mounting = null
			this.host = h("webcall-widget", { "data-agent": slug })
			this.shadow = this.host.attachShadow({ mode: "open" })
			this.root = h("div.root", { "data-state": "idle", "data-open": "false", hidden: true })
			this.launcher = h("button.launcher", { type: "button", "aria-expanded": "false" }, [
				icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"),
			])
			const commands = /** @type {Commands} */ (this)
			for (const name of COMMANDS) {
				commands[name] = (/** @type {unknown[]} */ ...args) =>
					this.app().then((widget) => /** @type {Commands} */ (widget)[name](...args))
			}
			this.loaded = this.load()
			this.loaded.catch(() => {})
		}

		get state() {
			return this.widget?.state || "idle"
		}

		async load() {
			if (!document.body) {
				await new Promise((resolve) => document.addEventListener("DOMContentLoaded", resolve, { once: true }))
			}
			if (!this.configUrl) {
				throw this.fail("data-agent and data-config (or data-server) are required on the script tag")
			}
			const url = new URL(this.configUrl)
			const lang = document.documentElement.lang
			if (lang) {
				url.searchParams.set("lang", lang)
			}
			let response
			let body
			try {
				response = await fetch(url)
				body = await response.json()
			} catch (error) {
				throw this.fail(
					`the agent's configuration could not be loaded from ${url.origin}: ${error.message}. ` +
						"If this page is on another site, add its origin to the agent's allowed origins.",
				)
			}
			if (!response.ok) {
				const code = body?.error?.code
				throw this.fail(`the agent's configuration could not be loaded (${code || response.status})`)
			}
			this.config = body
			this.drawLauncher(body)
			document.body.append(this.host)
			return this
		}

		/** @param {WebcallWidgetConfig} config */
		drawLauncher(config) {
			const { agent, assets } = config
			const { root, launcher } = this
			root.setAttribute("dir", config.dir)
			root.setAttribute("lang", config.language)
			root.setAttribute("data-position", agent.position)
			root.style.setProperty("--_agent-primary", agent.colors.primary)
			root.style.setProperty("--_agent-on-primary", agent.colors.onPrimary)
			if (agent.launcherLabel) {
				launcher.append(h("bdi.launcher-label", {}, [agent.launcherLabel]))
			} else {
				launcher.classList.add("launcher--icon-only")
				launcher.setAttribute("aria-label", `${config.strings.ui.openChat}: ${agent.title}`)
			}
			const wanted = () => this.app().catch(() => {})
			launcher.addEventListener("pointerenter", wanted)
			launcher.addEventListener("focus", wanted)
			launcher.addEventListener("click", () =>
				this.widget ? this.widget.toggle() : this.app().then((widget) => widget.toggle()),
			)
			const stylesheet = h("link", { rel: "stylesheet", href: assets.launcherCss })
			let resuming = false
			try {
				resuming = sessionStorage.getItem(this.storageKey) !== null
			} catch {}
			Promise.all([loaded(stylesheet), resuming && this.app()])
				.catch(() => {})
				.then(() => root.removeAttribute("hidden"))
			root.append(launcher)
			this.shadow.append(stylesheet, root)
		}

		app() {
			this.mounting ||= this.loaded.then(async () => {
				const shell = /** @type {WebcallShell} */ (this)
				const { assets } = shell.config
				const stylesheet = h("link", { rel: "stylesheet", href: assets.css })
				this.shadow.insertBefore(stylesheet, this.root)
				api._app ||= Promise.all([assets.app, ...assets.modules].map((url) => import(url)))
				const [[app]] = await Promise.all([api._app, loaded(stylesheet)])
				return (this.widget = app.mount(shell, { h, icon }))
			})
			this.mounting.catch((error) => console.warn(`WebcallWidget (${this.slug}): ${error.message}`))
			return this.mounting
		}

		/** @param {string} reason */
		fail(reason) {
			console.warn(`WebcallWidget (${this.slug || "?"}): ${reason}`)
			return new Error(reason)
		}
	}

	let api = window.WebcallWidget
	const queued = Array.isArray(api) ? api : []
	if (!api || !api.version) {
		/** @type {Shell[]} */
		const shells = []
		/** @param {Shell} [shell] */
		const handle = (shell) => shell && (shell.widget || shell)
		api = window.WebcallWidget = {
			version: "1",
			_shells: shells,
			get widgets() {
				return shells.map(handle)
			},
			get(slug) {
				return handle(slug ? shells.find((shell) => shell.slug === slug) : shells[0]) || null
			},
			get state() {
				return shells[0]?.state || "loading"
			},
			on(name, listener) {
				/** @param {Event} event */
				const handler = (event) => listener(/** @type {CustomEvent} */ (event).detail, event)
				document.addEventListener(`webcall:${name}`, handler)
				return () => document.removeEventListener(`webcall:${name}`, handler)
			},
			push(...commands) {
				for (const entry of commands) {
					if (!Array.isArray(entry) || typeof api[entry[0]] !== "function" || entry[0] === "push") {
						console.warn("WebcallWidget: unknown command", entry)
					} else {
						api[entry[0]](...entry.slice(1))
					}
				}
				return commands.length
			},
		}
		for (const name of COMMANDS) {
			api[name] = (/** @type {unknown[]} */ ...args) => /** @type {Commands} */ (shells[0])[name](...args)
		}
	}
	api._shells.push(new Shell())
	api.push(...queued)
})()
