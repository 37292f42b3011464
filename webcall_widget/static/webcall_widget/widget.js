/* django-webcall-widget: the embeddable chat and voice widget.
 *
 * A classic script (no build step, no framework). Embed it with the template tag
 *   {% load webcall_widget %}{% webcall_widget "slug" %}
 * or, on any other site, with
 *   <script src="https://django.example/static/webcall_widget/widget.js"
 *           data-agent="slug" data-server="https://django.example" defer></script>
 *
 * Everything lives in a Shadow DOM under a <webcall-widget> element. The only global is
 * window.WebcallWidget, the API; commands pushed onto it before this script ran are
 * replayed:  window.WebcallWidget = window.WebcallWidget || [];
 *            WebcallWidget.push(["on", "message", console.log], ["open"]);
 * Visitor and agent text is never parsed as HTML: it is set with textContent, or (agent
 * text with a little Markdown) built as elements and text nodes; styles come from
 * widget.css and the CSSOM, so a strict Content-Security-Policy needs no exceptions.
 *
 * A conversation survives reloads, other pages of the site and dropped connections: the
 * server keeps the call for a grace period and gives the widget a resume token, kept with
 * the call in sessionStorage (this tab, this site). On page load the widget takes the call
 * up again before anything else; after a drop it reconnects with backoff ("Reconnecting…"),
 * and what the visitor typed meanwhile is sent then, or marked as not sent.
 */
(() => {
  "use strict";

  const script = document.currentScript;
  if (!script) {
    return;
  }

  const CLOSE_CODES = {
    1012: "restarting",
    4012: "restarting",
    4400: "malformed_frame",
    4401: "bad_token",
    4403: "origin_not_allowed",
    4404: "unknown_call",
    4408: "timeout",
    4409: "token_used",
    4410: "taken_over",
    4413: "frame_too_large",
    4429: "rate_limited",
    4502: "upstream_failed",
    4503: "agent_disabled",
  };
  const PING_INTERVAL_MS = 25000;
  const PONG_TIMEOUT_MS = 10000; // no answer to a ping this long: the connection is dead
  const CONNECT_TIMEOUT_MS = 8000;
  const RECONNECT_DELAYS_MS = [0, 500, 1000, 2000, 4000]; // then 4 s, with some jitter
  const STORAGE_PREFIX = "webcall-widget:";
  const MODE_LABELS = { text: "modeText", WebAudio: "modeWebAudio", TextAudio: "modeTextAudio" };
  const SVG_NS = "http://www.w3.org/2000/svg";
  const ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z",
    close: "M6 6l12 12M18 6L6 18",
    send: "M4 12l16-8-6 16-2-6-8-2z",
    mic: "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM6 11a6 6 0 0 0 12 0M12 17v4M9 21h6",
  };

  // ---- small DOM helpers: attributes and text only, never markup strings ----

  function h(tag, attributes, children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === false || value === null || value === undefined) {
        continue;
      }
      element.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children || []) {
      element.append(child);
    }
    return element;
  }

  function icon(name) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    const outline = name === "close" || name === "mic";
    path.setAttribute("fill", outline ? "none" : "currentColor");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", outline ? "2" : "1");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
    svg.append(path);
    return svg;
  }

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, key) => (key in values ? values[key] : ""));
  }

  // ---- agent text: a little Markdown, built as DOM nodes (never parsed as HTML) ----

  // `code`, **bold**, *italic*, [label](url) and bare https:// links. A marker that is not
  // closed yet (a partial message) stays as typed. No lookbehind: older Safari lacks it.
  const INLINE =
    /`([^`\n]+)`|\*\*(\S(?:[^*\n]*\S)?)\*\*|\*(\S(?:[^*\n]*\S)?)\*|\[([^\]\n]+)\]\(([^\s)]+)\)|(https?:\/\/[^\s<>()]*[^\s<>().,;:!?'"])/g;
  const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
  const BULLET = /^\s*[-*\u2022]\s+(.*)$/;
  const NUMBERED = /^\s*(\d{1,3})[.)]\s+(.*)$/;

  function safeLink(href, label) {
    let url;
    try {
      url = new URL(href);
    } catch {
      return null;
    }
    if (!LINK_PROTOCOLS.has(url.protocol)) {
      return null;
    }
    return h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer nofollow" }, [label]);
  }

  function inlineNodes(text) {
    const nodes = [];
    let last = 0;
    for (const match of text.matchAll(INLINE)) {
      const [whole, code, bold, italic, label, href, bare] = match;
      let node = null;
      if (code !== undefined) {
        node = h("code", {}, [code]);
      } else if (bold !== undefined) {
        node = h("strong", {}, [bold]);
      } else if (italic !== undefined) {
        node = h("em", {}, [italic]);
      } else if (label !== undefined) {
        node = safeLink(href, label) || label;
      } else {
        node = safeLink(bare, bare) || bare;
      }
      nodes.push(text.slice(last, match.index), node);
      last = match.index + whole.length;
    }
    nodes.push(text.slice(last));
    return nodes.filter((node) => node !== "");
  }

  function richText(text) {
    const fragment = document.createDocumentFragment();
    let paragraph = [];
    let list = null;
    const flush = () => {
      if (paragraph.length) {
        fragment.append(h("p", {}, inlineNodes(paragraph.join("\n"))));
        paragraph = [];
      }
    };
    for (const line of text.split("\n")) {
      const bullet = BULLET.exec(line);
      const numbered = bullet ? null : NUMBERED.exec(line);
      if (bullet || numbered) {
        flush();
        const tag = bullet ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) {
          list = h(tag, numbered && numbered[1] !== "1" ? { start: numbered[1] } : {});
          fragment.append(list);
        }
        list.append(h("li", {}, inlineNodes(bullet ? bullet[1] : numbered[2])));
      } else if (line.trim() === "") {
        flush();
        list = null;
      } else {
        list = null;
        paragraph.push(line);
      }
    }
    flush();
    return fragment;
  }

  // ---- where this script's configuration comes from ----

  function readScriptOptions(element) {
    const data = element.dataset;
    const agent = data.agent || "";
    let configUrl = data.config || "";
    if (!configUrl && data.server && agent) {
      configUrl = `${data.server.replace(/\/+$/, "")}/webcall/agents/${encodeURIComponent(agent)}/config`;
    }
    return { agent, configUrl: configUrl ? new URL(configUrl, element.src || location.href) : null };
  }

  // ---- the global API (one object, shared by every widget on the page) ----

  function installApi() {
    const existing = window.WebcallWidget;
    if (existing && existing.__webcallWidget) {
      return existing;
    }
    const queued = Array.isArray(existing) ? existing.slice() : [];
    const widgets = [];
    const waiting = [];

    function find(slug) {
      return slug ? widgets.find((w) => w.slug === slug) : widgets[0];
    }

    function whenReady(slug) {
      const found = find(slug);
      if (found) {
        return found.loaded;
      }
      return new Promise((resolve) => waiting.push({ slug, resolve }));
    }

    // Commands act on the first widget on the page; WebcallWidget.get(slug) reaches others.
    function command(name) {
      return (...args) => whenReady().then((widget) => widget[name](...args));
    }

    const api = {
      __webcallWidget: true,
      version: "1",
      open: command("open"),
      close: command("close"),
      toggle: command("toggle"),
      start: command("start"),
      end: command("end"),
      send: command("send"),
      get widgets() {
        return widgets.slice();
      },
      get(slug) {
        return find(slug) || null;
      },
      get state() {
        const first = find();
        return first ? first.state : "loading";
      },
      on(name, listener) {
        const handler = (event) => listener(event.detail, event);
        document.addEventListener(`webcall:${name}`, handler);
        return () => document.removeEventListener(`webcall:${name}`, handler);
      },
      push(...commands) {
        for (const entry of commands) {
          if (!Array.isArray(entry) || typeof api[entry[0]] !== "function" || entry[0] === "push") {
            console.warn("WebcallWidget: unknown command", entry);
            continue;
          }
          api[entry[0]](...entry.slice(1));
        }
        return commands.length;
      },
      _register(widget) {
        widgets.push(widget);
        widget.loaded.then(
          () => {
            for (let i = waiting.length - 1; i >= 0; i -= 1) {
              if (!waiting[i].slug || waiting[i].slug === widget.slug) {
                waiting.splice(i, 1)[0].resolve(widget);
              }
            }
          },
          () => {}, // already explained on the console by Widget.fail
        );
      },
    };
    window.WebcallWidget = api;
    if (queued.length) {
      api.push(...queued);
    }
    return api;
  }


  // ---- a voice session: microphone -> worklet -> socket, socket -> worklet -> speakers ----

  const EARLY_FRAMES = 100; // about 2 s of audio captured before the socket is open
  const PLAYBACK_PREBUFFER_MS = 100;

  class VoiceError extends Error {
    constructor(code, cause) {
      super(code);
      this.code = code;
      this.cause = cause;
    }
  }

  function microphoneError(error) {
    const name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
      return new VoiceError("mic_denied", error);
    }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
      return new VoiceError("mic_missing", error);
    }
    if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
      return new VoiceError("mic_busy", error);
    }
    return new VoiceError("audio_failed", error);
  }

  class Voice {
    constructor(widget) {
      this.widget = widget;
      this.config = widget.config;
      this.context = null;
      this.stream = null;
      this.source = null;
      this.capture = null;
      this.playback = null;
      this.socket = null;
      this.early = [];
      this.muted = false;
      this.speaking = false;
      this.wakeLock = null;
      this.closed = false;
      this.statsWaiters = [];
      this.onVisibility = () => {
        if (document.visibilityState === "visible" && !this.closed) {
          this.holdWakeLock();
        }
      };
    }

    static supported() {
      return Boolean((window.AudioContext || window.webkitAudioContext) && window.AudioWorkletNode);
    }

    // Must run synchronously inside the click that starts the call: iOS Safari only lets
    // a page start audio from a user gesture.
    unlock() {
      const Context = window.AudioContext || window.webkitAudioContext;
      this.context = new Context({ latencyHint: "interactive" });
      if (this.context.state === "suspended") {
        this.context.resume().catch(() => {});
      }
    }

    async startPlayback() {
      try {
        await this.context.audioWorklet.addModule(this.config.assets.worklet);
      } catch (error) {
        throw new VoiceError("audio_failed", error);
      }
      this.playback = new AudioWorkletNode(this.context, "webcall-playback", {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { sourceRate: this.config.audio.outputRate, prebufferMs: PLAYBACK_PREBUFFER_MS },
      });
      this.playback.port.onmessage = (event) => this.fromPlayback(event.data);
      this.playback.connect(this.context.destination);
    }

    async startCapture() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        throw new VoiceError(window.isSecureContext ? "mic_missing" : "mic_insecure");
      }
      const mic = this.config.microphone;
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({
          audio: {
            channelCount: 1,
            echoCancellation: mic.echoCancellation,
            noiseSuppression: mic.noiseSuppression,
            autoGainControl: mic.autoGainControl,
          },
        });
      } catch (error) {
        throw microphoneError(error);
      }
      if (this.closed) {
        this.stopTracks();
        return;
      }
      this.source = this.context.createMediaStreamSource(this.stream);
      this.capture = new AudioWorkletNode(this.context, "webcall-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        processorOptions: { targetRate: this.config.audio.inputRate, frameMs: this.config.audio.frameMs },
      });
      this.capture.port.onmessage = (event) => this.fromCapture(event.data);
      this.source.connect(this.capture);
      // Its output is silent; being connected keeps it rendering in every browser.
      this.capture.connect(this.context.destination);
      this.holdWakeLock();
      document.addEventListener("visibilitychange", this.onVisibility);
    }

    get capturing() {
      return Boolean(this.capture);
    }

    attach(socket) {
      this.socket = socket;
      const flush = () => {
        for (const frame of this.early.splice(0)) {
          socket.send(frame);
        }
      };
      if (socket.readyState === WebSocket.OPEN) {
        flush();
      } else {
        socket.addEventListener("open", flush);
      }
    }

    // The socket dropped: keep the last moments of speech for the next one.
    detach() {
      this.socket = null;
    }

    fromCapture(message) {
      if (message.type === "frame") {
        const socket = this.socket;
        if (socket && socket.readyState === WebSocket.OPEN) {
          socket.send(message.pcm);
        } else if (!socket || socket.readyState === WebSocket.CONNECTING) {
          this.early.push(message.pcm);
          if (this.early.length > EARLY_FRAMES) {
            this.early.shift();
          }
        }
      } else if (message.type === "level") {
        this.widget.showLevel(this.muted ? 0 : message.rms);
      }
    }

    fromPlayback(message) {
      if (message.type === "speaking") {
        this.speaking = message.speaking;
        this.widget.onSpeaking(message.speaking);
      } else if (message.type === "stats") {
        for (const resolve of this.statsWaiters.splice(0)) {
          resolve(message);
        }
      }
    }

    play(buffer) {
      if (this.playback && !this.closed) {
        this.playback.port.postMessage({ type: "push", pcm: buffer }, [buffer]);
      }
    }

    interrupt() {
      if (this.playback) {
        this.playback.port.postMessage({ type: "clear" });
      }
    }

    stats() {
      return new Promise((resolve) => {
        this.statsWaiters.push(resolve);
        this.playback.port.postMessage({ type: "stats" });
      });
    }

    setMuted(muted) {
      this.muted = muted;
      if (this.stream) {
        for (const track of this.stream.getAudioTracks()) {
          track.enabled = !muted;
        }
      }
    }

    holdWakeLock() {
      if (!("wakeLock" in navigator) || this.wakeLock) {
        return;
      }
      navigator.wakeLock.request("screen").then(
        (lock) => {
          this.wakeLock = lock;
          lock.addEventListener("release", () => {
            if (this.wakeLock === lock) {
              this.wakeLock = null;
            }
          });
          if (this.closed) {
            lock.release().catch(() => {});
          }
        },
        () => {}, // not allowed (hidden tab, battery saver): the call goes on without it
      );
    }

    stopTracks() {
      if (this.stream) {
        for (const track of this.stream.getTracks()) {
          track.stop();
        }
      }
    }

    // Hang-up: release the microphone, stop the processors and close the audio graph.
    async close() {
      if (this.closed) {
        return;
      }
      this.closed = true;
      document.removeEventListener("visibilitychange", this.onVisibility);
      this.stopTracks();
      for (const node of [this.capture, this.playback]) {
        if (node) {
          node.port.postMessage({ type: "stop" });
          node.disconnect();
        }
      }
      if (this.source) {
        this.source.disconnect();
      }
      this.early = [];
      if (this.wakeLock) {
        const lock = this.wakeLock;
        this.wakeLock = null;
        lock.release().catch(() => {});
      }
      if (this.context && this.context.state !== "closed") {
        await this.context.close().catch(() => {});
      }
    }
  }

  // ---- one widget: the launcher, the panel and one conversation at a time ----

  class Widget {
    constructor({ agent, configUrl }) {
      this.slug = agent;
      this.configUrl = configUrl;
      this.state = "idle";
      this.isOpen = false;
      this.config = null;
      this.socket = null;
      this.callId = null;
      this.ended = null;
      this.lastError = null;
      this.pending = null;
      this.pingTimer = 0;
      this.voice = null;
      this.voicePending = false; // a resumed voice call waits for a click to restart audio
      this.messageElements = new Map();
      this.lastAgentMessageId = null; // what the agent's voice says, until the visitor talks over it
      this.resume = null; // {token, seconds} from the server
      this.socketBase = null; // the relay's socket URL without a token
      this.reconnecting = null; // {deadline, attempt, timer}
      this.outbox = []; // [{id, text}] typed while not connected
      this.unconfirmed = new Map(); // id -> text, sent and not yet confirmed
      this.awaitingPong = 0;
      this.endNotice = null;
      this.previousFrame = null;
      this.storageKey = configUrl ? `${STORAGE_PREFIX}${configUrl.origin}${configUrl.pathname}` : "";
      this.host = document.createElement("webcall-widget");
      this.host.setAttribute("data-agent", agent);
      this.shadow = this.host.attachShadow({ mode: "open" });
      this.loaded = new Promise((resolve, reject) => {
        this.resolveLoaded = resolve;
        this.rejectLoaded = reject;
      });
      this.loaded.catch(() => {});
    }

    async load() {
      if (!this.configUrl) {
        this.fail("data-agent and data-config (or data-server) are required on the script tag");
        return;
      }
      const url = new URL(this.configUrl);
      const lang = document.documentElement.lang;
      if (lang) {
        url.searchParams.set("lang", lang);
      }
      let config;
      try {
        const response = await fetch(url, { credentials: "same-origin" });
        config = await response.json();
        if (!response.ok) {
          const reason = (config && config.error && config.error.code) || response.status;
          this.fail(`the agent's configuration could not be loaded (${reason})`);
          return;
        }
      } catch (error) {
        this.fail(
          `the agent's configuration could not be loaded from ${url.origin}: ${error.message}. ` +
            "If this page is on another site, add its origin to the agent's allowed origins.",
        );
        return;
      }
      this.config = config;
      this.strings = config.strings.ui;
      this.errors = config.strings.errors;
      this.build();
      document.body.append(this.host);
      // Before the first paint: a conversation in progress is taken up, not started anew.
      const saved = this.readSaved();
      if (saved) {
        this.resumeSaved(saved);
      }
      this.resolveLoaded(this);
    }

    // -- the call kept in sessionStorage (this tab, this site) --

    readSaved() {
      try {
        const saved = JSON.parse(window.sessionStorage.getItem(this.storageKey) || "null");
        if (saved && typeof saved.call === "string" && typeof saved.token === "string" && typeof saved.socket === "string") {
          return saved;
        }
      } catch {
        // storage refused (a sandboxed frame, a privacy setting): nothing to resume
      }
      return null;
    }

    save() {
      if (!this.resume || !this.callId || !this.socketBase) {
        return;
      }
      const saved = {
        call: this.callId,
        token: this.resume.token,
        seconds: this.resume.seconds,
        mode: this.mode,
        open: this.isOpen,
        socket: this.socketBase,
      };
      try {
        window.sessionStorage.setItem(this.storageKey, JSON.stringify(saved));
      } catch {
        // the call still works; it just cannot be taken up again after a reload
      }
    }

    forget() {
      this.resume = null;
      try {
        window.sessionStorage.removeItem(this.storageKey);
      } catch {
        // nothing was saved
      }
    }

    resumeSaved(saved) {
      this.callId = saved.call;
      this.mode = saved.mode;
      this.socketBase = saved.socket;
      this.resume = { token: saved.token, seconds: Number(saved.seconds) || 0 };
      this.startReconnecting();
      if (saved.open) {
        this.open({ focus: false }); // as the visitor left it, without taking the page's focus
      }
    }

    fail(reason) {
      console.warn(`WebcallWidget (${this.slug || "?"}): ${reason}`);
      this.rejectLoaded(new Error(reason));
    }

    // -- building the interface --

    build() {
      const { agent } = this.config;
      const s = this.strings;
      const stylesheet = h("link", { rel: "stylesheet", href: this.config.assets.css });
      this.root = h("div", {
        class: "root",
        dir: this.config.dir,
        lang: this.config.language,
        "data-state": this.state,
        "data-open": "false",
        "data-position": agent.position,
        hidden: true,
      });
      stylesheet.addEventListener("load", () => this.root.removeAttribute("hidden"));
      stylesheet.addEventListener("error", () => this.root.removeAttribute("hidden"));
      this.root.style.setProperty("--_agent-primary", agent.colors.primary);
      this.root.style.setProperty("--_agent-on-primary", agent.colors.onPrimary);

      const label = agent.launcherLabel;
      this.launcher = h(
        "button",
        {
          type: "button",
          class: label ? "launcher" : "launcher launcher--icon-only",
          "aria-expanded": "false",
          "aria-controls": "webcall-panel",
          "aria-label": label ? false : `${s.openChat}: ${agent.title}`,
        },
        [icon("chat")],
      );
      if (label) {
        this.launcher.append(h("bdi", { class: "launcher-label" }, [label]));
      }
      this.launcher.addEventListener("click", () => this.toggle());

      this.statusText = h("span", { class: "status", role: "status" }, [s.stateIdle]);
      const heading = h("div", { class: "heading" }, [
        h("h2", { class: "title", id: "webcall-title" }, [h("bdi", {}, [agent.title])]),
      ]);
      if (agent.subtitle) {
        // At most two lines here; the start view shows it whole.
        heading.append(h("p", { class: "subtitle", title: agent.subtitle }, [h("bdi", {}, [agent.subtitle])]));
      }
      heading.append(this.statusText);
      const closeButton = h("button", { type: "button", class: "icon-button", "aria-label": s.closeChat }, [
        icon("close"),
      ]);
      closeButton.addEventListener("click", () => this.close());
      const header = h("div", { class: "header" }, []);
      if (agent.avatarUrl) {
        header.append(h("img", { class: "avatar", src: agent.avatarUrl, alt: "" }));
      }
      header.append(heading, closeButton);

      this.startView = this.buildStartView();
      this.transcript = h("ol", {
        class: "transcript",
        role: "log",
        "aria-live": "off",
        "aria-label": s.transcript,
        hidden: true,
      });
      this.notice = h("div", { class: "notice", role: "alert", hidden: true });
      this.announcer = h("div", { class: "announcer sr-only", "aria-live": "polite", "aria-atomic": "true" });
      const body = h("div", { class: "body" }, [this.startView, this.transcript, this.notice, this.announcer]);

      this.footer = this.buildFooter();
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
        [header, body, this.footer],
      );
      this.panel.addEventListener("keydown", (event) => {
        if (event.key === "Escape") {
          event.stopPropagation();
          this.close();
        }
      });
      this.root.append(this.launcher, this.panel);
      this.shadow.append(stylesheet, this.root);
      window.addEventListener("pagehide", () => this.onPageHide());
      window.addEventListener("pageshow", (event) => {
        if (event.persisted && this.state === "live" && (!this.socket || this.socket.readyState !== WebSocket.OPEN)) {
          this.startReconnecting();
        }
      });
      window.addEventListener("offline", () => this.onOffline());
      window.addEventListener("online", () => this.onOnline());
      this.render();
    }

    buildStartView() {
      const s = this.strings;
      const { agent } = this.config;
      const view = h("div", { class: "start" });
      if (agent.subtitle) {
        view.append(h("p", { class: "about" }, [h("bdi", {}, [agent.subtitle])]));
      }
      if (agent.greeting) {
        view.append(h("p", { class: "greeting" }, [h("bdi", {}, [agent.greeting])]));
      }
      const modes = this.availableModes();
      if (modes.length > 1) {
        view.append(h("p", { class: "choose", id: "webcall-choose" }, [s.chooseMode]));
      }
      const list = h("div", { class: "modes", role: "group", "aria-labelledby": modes.length > 1 ? "webcall-choose" : false });
      for (const mode of modes) {
        const text = modes.length > 1 ? s[MODE_LABELS[mode]] || mode : s.start;
        const button = h("button", { type: "button", class: "primary-button", "data-mode": mode }, [text]);
        button.addEventListener("click", () => this.start(mode));
        list.append(button);
      }
      view.append(list);
      return view;
    }

    buildFooter() {
      const s = this.strings;
      this.input = h("textarea", {
        class: "input",
        rows: 1,
        "aria-label": s.messageLabel,
        placeholder: s.messagePlaceholder,
        maxlength: this.config.maxTextLength,
        enterkeyhint: "send",
        dir: "auto",
      });
      this.sendButton = h("button", { type: "submit", class: "send", "aria-label": s.send }, [icon("send")]);
      this.composer = h("form", { class: "composer" }, [this.input, this.sendButton]);
      this.composer.addEventListener("submit", (event) => {
        event.preventDefault();
        this.submitComposer();
      });
      this.input.addEventListener("keydown", (event) => {
        // Enter sends; Shift+Enter is a newline; never while an IME is composing.
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
          event.preventDefault();
          this.submitComposer();
        }
      });
      this.input.addEventListener("input", () => this.fitInput());
      this.endButton = h("button", { type: "button", class: "link-button" }, [s.end]);
      this.endButton.addEventListener("click", () => this.end());
      this.restartButton = h("button", { type: "button", class: "secondary-button" }, [s.restart]);
      this.restartButton.addEventListener("click", () => this.restart());
      const actions = h("div", { class: "footer-actions" }, [this.endButton, this.restartButton]);
      this.micButton = h("button", { type: "button", class: "mic", "aria-pressed": "false", "aria-label": s.mute }, [
        icon("mic"),
      ]);
      this.micButton.addEventListener("click", () => this.toggleMute());
      this.meter = h("div", { class: "meter", role: "presentation", title: s.micLevel }, [h("div", { class: "meter-fill" })]);
      this.voiceStatus = h("span", { class: "voice-status", "aria-live": "polite" });
      this.continueVoiceButton = h("button", { type: "button", class: "primary-button continue-voice", hidden: true }, [
        s.continueVoice,
      ]);
      this.continueVoiceButton.addEventListener("click", () => this.continueVoice());
      this.voiceBar = h("div", { class: "voicebar", hidden: true }, [
        this.continueVoiceButton,
        this.micButton,
        this.meter,
        this.voiceStatus,
      ]);
      return h("div", { class: "footer" }, [this.voiceBar, this.composer, actions]);
    }

    availableModes() {
      return this.config.modes.filter((mode) => this.supports(mode));
    }

    supports(mode) {
      return mode === "text" || Voice.supported();
    }

    fitInput() {
      this.input.style.height = "auto";
      this.input.style.height = `${Math.min(this.input.scrollHeight, 140)}px`;
    }

    // -- what is shown follows the state --

    setState(state) {
      if (state === this.state) {
        return;
      }
      const previous = this.state;
      this.state = state;
      this.render();
      this.emit("state", { state, previous, call: this.callId });
    }

    render() {
      const s = this.strings;
      const { state } = this;
      const inConversation = state !== "idle" || this.messageElements.size > 0;
      this.root.setAttribute("data-state", state);
      this.statusText.textContent = {
        idle: s.stateIdle,
        connecting: s.stateConnecting,
        live: s.stateLive,
        reconnecting: s.stateReconnecting,
        ending: s.stateLive,
        ended: s.stateEnded,
        error: s.stateError,
      }[state];
      this.startView.hidden = inConversation;
      const over = state === "ended" || state === "error";
      // A call that failed before a word was said shows its notice alone, in the middle.
      this.transcript.hidden = !inConversation || (over && this.messageElements.size === 0);
      this.composer.hidden = over || this.mode === "WebAudio";
      this.input.disabled = (state !== "live" && state !== "reconnecting") || !this.mode || this.mode === "WebAudio";
      this.sendButton.disabled = this.input.disabled;
      this.endButton.hidden = over;
      const voice = this.voice;
      const waitingForClick = this.voicePending && !voice && state === "live";
      this.voiceBar.hidden = over || !(voice || waitingForClick);
      this.continueVoiceButton.hidden = !waitingForClick;
      this.micButton.hidden = !(voice && voice.capturing);
      this.meter.hidden = this.micButton.hidden;
      if (voice) {
        this.micButton.setAttribute("aria-pressed", voice.muted ? "true" : "false");
        this.micButton.setAttribute("aria-label", voice.muted ? s.unmute : s.mute);
      }
      this.renderFooter();
      this.renderVoiceStatus();
    }

    // One way on after a call is over: the notice's own actions (Try again), or Start again.
    renderFooter() {
      const over = this.state === "ended" || this.state === "error";
      const inConversation = this.state !== "idle" || this.messageElements.size > 0;
      this.restartButton.hidden = !over || Boolean(this.notice.querySelector("button"));
      this.footer.hidden = !inConversation || (this.composer.hidden && this.endButton.hidden && this.restartButton.hidden && this.voiceBar.hidden);
    }

    showNotice(message, actions) {
      this.notice.replaceChildren(h("p", {}, [message]));
      if (actions && actions.length) {
        const row = h("div", { class: "notice-actions" });
        for (const [text, handler] of actions) {
          const button = h("button", { type: "button", class: "secondary-button" }, [text]);
          button.addEventListener("click", handler);
          row.append(button);
        }
        this.notice.append(row);
      }
      this.notice.hidden = false;
      this.renderFooter();
    }

    hideNotice() {
      this.notice.hidden = true;
      this.notice.replaceChildren();
      this.renderFooter();
    }

    // -- opening and closing the panel --

    open({ focus = true } = {}) {
      if (this.isOpen) {
        return;
      }
      this.isOpen = true;
      this.panel.hidden = false;
      this.root.setAttribute("data-open", "true");
      this.launcher.setAttribute("aria-expanded", "true");
      this.save();
      if (focus) {
        this.focusInside();
      }
    }

    close() {
      if (!this.isOpen) {
        return;
      }
      const hadFocus = this.shadow.activeElement && this.panel.contains(this.shadow.activeElement);
      this.isOpen = false;
      this.panel.hidden = true;
      this.root.setAttribute("data-open", "false");
      this.launcher.setAttribute("aria-expanded", "false");
      this.save();
      if (hadFocus || this.shadow.activeElement === null) {
        this.launcher.focus();
      }
    }

    toggle() {
      if (this.isOpen) {
        this.close();
      } else {
        this.open();
      }
    }

    focusInside() {
      if (!this.isOpen) {
        return;
      }
      let target;
      if (!this.continueVoiceButton.hidden && !this.voiceBar.hidden && !this.footer.hidden) {
        target = this.continueVoiceButton;
      } else if (!this.input.disabled && !this.composer.hidden && !this.footer.hidden) {
        target = this.input;
      } else if (!this.voiceBar.hidden && !this.micButton.hidden && !this.footer.hidden) {
        target = this.micButton;
      } else if (!this.notice.hidden) {
        target = this.notice.querySelector("button");
      } else if (!this.startView.hidden) {
        target = this.startView.querySelector("button");
      } else if (!this.restartButton.hidden) {
        target = this.restartButton;
      }
      (target || this.panel.querySelector(".icon-button")).focus();
    }

    // -- a conversation --

    async start(mode) {
      if (["connecting", "live", "ending", "reconnecting"].includes(this.state)) {
        return;
      }
      const chosen = mode || this.config.defaultMode;
      if (!this.availableModes().includes(chosen)) {
        this.showError("mode_not_allowed");
        return;
      }
      this.reset();
      this.mode = chosen;
      this.open();
      let voice = null;
      if (chosen !== "text") {
        voice = new Voice(this);
        this.voice = voice;
        try {
          voice.unlock(); // before any await: still inside the visitor's click
        } catch (error) {
          this.voice = null;
          this.showError("audio_failed", null, true);
          return;
        }
      }
      this.setState("connecting");
      if (voice && !(await this.startVoice(voice, chosen))) {
        return;
      }
      const controller = new AbortController();
      this.pending = controller;
      let response;
      let body = null;
      try {
        response = await fetch(this.config.createCallUrl, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ mode: chosen }),
          credentials: "same-origin",
          signal: controller.signal,
        });
        body = await response.json().catch(() => null);
      } catch (error) {
        if (controller.signal.aborted) {
          return;
        }
        this.showError("network", null, true);
        return;
      } finally {
        this.pending = null;
      }
      if (!response.ok || !body || !body.socket) {
        const error = (body && body.error) || {};
        this.showError(error.code || (response.status === 429 ? "rate_limited" : "network"), error.message, true, response.headers.get("Retry-After"));
        return;
      }
      this.callId = body.call;
      // The relay's URL ends with the token: the same place takes a resume token later.
      this.socketBase = body.socket.replace(/[^/]+\/?$/, "");
      this.connect(body.socket);
    }

    // Playback first (it needs no permission), then the microphone. False: stop here.
    async startVoice(voice, mode) {
      this.render();
      try {
        await voice.startPlayback();
        await voice.startCapture();
      } catch (error) {
        const code = error instanceof VoiceError ? error.code : "audio_failed";
        if (voice !== this.voice) {
          return false; // ended meanwhile
        }
        if (mode === "TextAudio" && voice.playback) {
          // The agent can still be heard; the visitor types instead of talking.
          this.render();
          this.showMicrophoneRefused(code);
          this.emit("error", { code, message: this.errorText(code), call: null });
          return true;
        }
        this.voice = null;
        await voice.close();
        const actions = [[this.strings.retry, () => this.start(mode)]];
        if (this.config.modes.includes("text")) {
          actions.push([this.strings.textInstead, () => this.start("text")]);
        }
        this.setState("error");
        this.showNotice(this.errorText(code), actions);
        this.emit("error", { code, message: this.errorText(code), call: null });
        this.focusInside();
        return false;
      }
      if (voice !== this.voice) {
        await voice.close();
        return false;
      }
      this.render();
      return true;
    }

    // "Voice and chat" without a microphone goes on as text, and can ask for it again.
    showMicrophoneRefused(code) {
      const s = this.strings;
      this.showNotice(`${this.errorText(code)} ${s.continuingAsText}`, [[s.retry, () => this.retryMicrophone()]]);
    }

    async retryMicrophone() {
      const voice = this.voice;
      if (!voice || voice.capturing || voice.closed) {
        return;
      }
      try {
        await voice.startCapture();
      } catch (error) {
        const code = error instanceof VoiceError ? error.code : "audio_failed";
        if (voice === this.voice) {
          this.showMicrophoneRefused(code);
          this.emit("error", { code, message: this.errorText(code), call: this.callId });
          this.focusInside();
        }
        return;
      }
      if (voice !== this.voice) {
        return;
      }
      this.hideNotice();
      this.render();
      this.focusInside();
    }

    toggleMute() {
      if (!this.voice) {
        return;
      }
      this.voice.setMuted(!this.voice.muted);
      this.render();
    }

    showLevel(rms) {
      const level = Math.min(1, Math.sqrt(rms) * 1.8);
      this.meter.style.setProperty("--level", level.toFixed(3));
    }

    onSpeaking(speaking) {
      this.root.setAttribute("data-speaking", speaking ? "true" : "false");
      this.renderVoiceStatus();
    }

    renderVoiceStatus() {
      const voice = this.voice;
      const s = this.strings;
      let text = "";
      if (voice && voice.capturing) {
        if (voice.muted) {
          text = s.voiceMuted;
        } else if (voice.speaking) {
          text = s.voiceSpeaking;
        } else if (this.state === "live") {
          text = s.voiceListening;
        } else {
          text = s.stateConnecting;
        }
      } else if (voice && this.state === "connecting") {
        text = s.voiceStarting;
      } else if (voice && voice.speaking) {
        text = s.voiceSpeaking;
      }
      this.voiceStatus.textContent = text;
    }

    connect(url) {
      let socket;
      try {
        socket = new WebSocket(url);
      } catch (error) {
        this.showError("network", null, true);
        return;
      }
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      this.ended = null;
      this.lastError = null;
      this.endNotice = null;
      this.previousFrame = null;
      if (this.voice) {
        this.voice.attach(socket);
      }
      socket.addEventListener("message", (event) => this.onFrame(event));
      socket.addEventListener("close", (event) => this.onClose(socket, event));
      const timer = window.setTimeout(() => {
        if (socket.readyState === WebSocket.CONNECTING) {
          socket.close(); // a network that swallows the handshake: try again
        }
      }, CONNECT_TIMEOUT_MS);
      socket.addEventListener("open", () => window.clearTimeout(timer));
      socket.addEventListener("close", () => window.clearTimeout(timer));
    }

    resumeUrl() {
      return `${this.socketBase}${encodeURIComponent(this.resume.token)}/`;
    }

    // -- taking the call up again: after a reload, another page, a dropped connection --

    canResume() {
      return Boolean(this.resume && this.resume.token && this.socketBase && this.callId);
    }

    startReconnecting() {
      if (!this.canResume()) {
        return false;
      }
      if (this.state !== "reconnecting") {
        if (this.voice) {
          this.voice.detach();
        }
        // What was sent but not confirmed may not have arrived: it waits with the rest.
        for (const [id, text] of this.unconfirmed) {
          this.queue(id, text);
        }
        this.unconfirmed.clear();
        const seconds = this.resume.seconds || 0;
        this.reconnecting = { deadline: Date.now() + seconds * 1000, attempt: 0, timer: 0 };
        this.hideNotice();
        this.setState("reconnecting");
      }
      this.scheduleReconnect();
      return true;
    }

    scheduleReconnect() {
      const attempt = this.reconnecting;
      if (!attempt) {
        return;
      }
      window.clearTimeout(attempt.timer);
      const left = attempt.deadline - Date.now();
      if (left <= 0 && attempt.attempt > 0) {
        this.giveUp();
        return;
      }
      const base = RECONNECT_DELAYS_MS[Math.min(attempt.attempt, RECONNECT_DELAYS_MS.length - 1)];
      const delay = Math.max(0, Math.min(base * (0.8 + Math.random() * 0.4), left));
      attempt.attempt += 1;
      attempt.timer = window.setTimeout(() => this.tryReconnect(), delay);
    }

    tryReconnect() {
      if (!this.reconnecting || this.state !== "reconnecting") {
        return;
      }
      if (navigator.onLine === false) {
        this.scheduleReconnect(); // "online" tries again at once
        return;
      }
      this.connect(this.resumeUrl());
    }

    stopReconnecting() {
      if (this.reconnecting) {
        window.clearTimeout(this.reconnecting.timer);
        this.reconnecting = null;
      }
    }

    // The grace period is over and the call could not be taken up again.
    giveUp() {
      this.stopReconnecting();
      this.forget();
      this.releaseVoice();
      this.failPending();
      this.setState("ended");
      const message = this.errorText("lost_while_away");
      this.showNotice(message);
      this.emit("error", { code: "lost_while_away", message, call: this.callId });
    }

    onOffline() {
      // The browser knows the network is gone: so is the socket. Say so now, rather than
      // when the next ping goes unanswered.
      if (this.state === "live" && this.socket && this.canResume()) {
        const socket = this.socket;
        this.onClose(socket, { code: 1006 });
        socket.close(4000);
      }
    }

    onOnline() {
      if (this.state === "reconnecting" && this.reconnecting && !this.socket) {
        window.clearTimeout(this.reconnecting.timer);
        this.tryReconnect();
      }
    }

    onPageHide() {
      if (this.canResume() && (this.state === "live" || this.state === "reconnecting")) {
        // A reload or another page of the site: the next page takes the call up again.
        this.save();
        return;
      }
      this.hangUp();
    }

    // A resumed voice call after a page load: audio may only start from a click.
    async continueVoice() {
      if (!this.voicePending || this.voice || this.state !== "live") {
        return;
      }
      const voice = new Voice(this);
      this.voice = voice;
      try {
        voice.unlock(); // before any await: still inside the visitor's click
      } catch (error) {
        this.voice = null;
        this.showNotice(this.errorText("audio_failed"));
        return;
      }
      this.voicePending = false;
      this.render();
      try {
        await voice.startPlayback();
        await voice.startCapture();
      } catch (error) {
        const code = error instanceof VoiceError ? error.code : "audio_failed";
        if (voice !== this.voice) {
          return;
        }
        if (this.mode === "TextAudio" && voice.playback) {
          this.showMicrophoneRefused(code);
        } else {
          this.voice = null;
          this.voicePending = true;
          await voice.close();
          this.showNotice(this.errorText(code));
        }
        this.emit("error", { code, message: this.errorText(code), call: this.callId });
        this.render();
        return;
      }
      if (voice !== this.voice) {
        await voice.close();
        return;
      }
      if (this.socket) {
        voice.attach(this.socket);
      }
      this.hideNotice();
      this.render();
      this.focusInside();
    }

    // -- messages typed while the connection is away --

    newMessageId() {
      return `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
    }

    queue(id, text) {
      this.outbox.push({ id, text });
      this.showMessage({ id, role: "user", text, final: true }, { pending: true });
    }

    flushOutbox() {
      const waiting = this.outbox.splice(0);
      for (const { id, text } of waiting) {
        if (this.socket && this.socket.readyState === WebSocket.OPEN && this.state === "live") {
          this.unconfirmed.set(id, text);
          this.socket.send(JSON.stringify({ type: "text", text, id }));
        } else {
          this.outbox.push({ id, text });
        }
      }
    }

    // The call is over: what never reached it is marked as not sent.
    failPending() {
      for (const { id } of this.outbox) {
        this.markUnsent(id);
      }
      for (const id of this.unconfirmed.keys()) {
        this.markUnsent(id);
      }
      this.outbox = [];
      this.unconfirmed.clear();
    }

    markUnsent(id) {
      const item = this.messageElements.get(id);
      if (!item) {
        return;
      }
      item.classList.remove("message--pending");
      item.classList.add("message--unsent");
      this.messageStatus(item).textContent = this.strings.notSent;
    }

    // The visitor talked over this message: what was said of it is less than its text.
    markInterrupted(id) {
      const item = id && this.messageElements.get(id);
      if (!item || item.classList.contains("message--interrupted")) {
        return;
      }
      item.classList.add("message--interrupted");
      this.messageStatus(item).textContent = this.strings.interrupted;
    }

    messageStatus(item) {
      let status = item.querySelector(".message-status");
      if (!status) {
        status = h("span", { class: "message-status" });
        item.append(status);
      }
      return status;
    }

    onFrame(event) {
      if (typeof event.data !== "string") {
        this.onAudio(event.data);
        return;
      }
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      const previous = this.previousFrame;
      this.previousFrame = frame.type;
      this.awaitingPong = 0; // anything at all says the connection is alive
      switch (frame.type) {
        case "ready": {
          this.callId = frame.call;
          this.mode = frame.mode || this.mode;
          if (frame.audio && (frame.audio.inputRate !== this.config.audio.inputRate || frame.audio.outputRate !== this.config.audio.outputRate)) {
            console.warn("WebcallWidget: the call's audio format differs from the agent's configuration", frame.audio);
          }
          const fromPageLoad = this.state === "reconnecting" && !this.voice;
          this.stopReconnecting();
          this.resume = frame.resume || null;
          if (this.resume) {
            this.save();
          } else {
            this.forget();
          }
          if (frame.resumed && fromPageLoad && frame.mode !== "text") {
            this.voicePending = true; // audio needs a click on this page
          }
          this.setState("live");
          this.emit("ready", { call: frame.call, mode: frame.mode, audio: frame.audio, resumed: Boolean(frame.resumed) });
          this.startPinging();
          if (!frame.resumed) {
            this.focusInside();
          } else if (this.voicePending && this.isOpen) {
            this.focusInside();
          }
          break;
        }
        case "transcript":
          for (const message of frame.messages || []) {
            this.showMessage(message, { quiet: true });
            if (message.role === "user") {
              this.confirm(message.id);
            }
          }
          this.flushOutbox();
          break;
        case "resume":
          if (this.resume) {
            this.resume.token = frame.token;
            this.save();
          }
          break;
        case "message":
          this.showMessage(frame);
          if (frame.role === "user") {
            this.confirm(frame.id);
          }
          this.emit("message", { id: frame.id, role: frame.role, text: frame.text, final: frame.final, call: this.callId });
          break;
        case "error":
          this.lastError = frame;
          this.emit("error", { code: frame.code, message: this.errorText(frame.code, frame.message), call: this.callId });
          if (this.state === "live") {
            this.showNotice(this.errorText(frame.code, frame.message));
          }
          break;
        case "ended":
          this.ended = frame.reason;
          // Said just before the end (ended by the site, a call that ended while away).
          this.endNotice = previous === "error" && this.lastError ? this.lastError : null;
          break;
        case "interrupt":
          this.onInterrupt();
          break;
        default:
          break;
      }
    }

    onClose(socket, event) {
      if (socket !== this.socket) {
        return;
      }
      this.socket = null;
      this.stopPinging();
      const code = event.code;
      if (code === 1000 && this.ended !== null) {
        this.stopReconnecting();
        this.forget();
        this.releaseVoice();
        this.failPending();
        this.voicePending = false;
        if (this.endNotice) {
          this.showNotice(this.errorText(this.endNotice.code, this.endNotice.message));
        } else {
          this.hideNotice();
        }
        this.setState("ended");
        this.focusInside();
        return;
      }
      const known = CLOSE_CODES[code];
      if (!known && (this.state === "live" || this.state === "reconnecting") && this.startReconnecting()) {
        return; // a dropped connection, not a refusal: the call waits for us a while
      }
      this.stopReconnecting();
      this.forget();
      this.releaseVoice();
      this.failPending();
      this.voicePending = false;
      if (known === "taken_over") {
        const message = this.errorText("taken_over");
        this.setState("ended");
        this.showNotice(message);
        this.emit("error", { code: known, message, call: this.callId });
        return;
      }
      const fromFrame = this.lastError && this.lastError.code;
      const reason = known === "upstream_failed" && fromFrame ? fromFrame : known || "dropped";
      // A server restart is the one failure worth trying again at once, in the same mode.
      const alreadySaid = Boolean(fromFrame) && fromFrame === reason;
      this.showError(reason, this.lastError && this.lastError.message, reason === "restarting", undefined, alreadySaid);
    }

    errorText(code, fallback) {
      return this.errors[code] || fallback || this.errors.network;
    }

    showError(code, fallback, canRetry, retryAfter, alreadySaid = false) {
      const message = this.errorText(code, fallback);
      const actions = [];
      if (canRetry && this.mode) {
        const mode = this.mode;
        actions.push([this.strings.retry, () => this.start(mode)]);
      }
      this.setState("error");
      this.showNotice(message, actions);
      if (!alreadySaid) {
        this.emit("error", { code, message, call: this.callId, retryAfter: retryAfter ? Number(retryAfter) : undefined });
      }
      this.focusInside();
    }

    showMessage({ id, role, text, final }, { quiet = false, pending = false } = {}) {
      const list = this.transcript;
      const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
      let item = this.messageElements.get(id);
      if (!item) {
        const speaker = role === "user" ? this.strings.you : this.config.agent.title;
        item = h("li", { class: `message message--${role === "user" ? "user" : "agent"}` }, [
          h("span", { class: "sr-only" }, [`${speaker}: `]),
          h(role === "user" ? "span" : "div", { class: "text", dir: "auto" }),
        ]);
        this.messageElements.set(id, item);
        list.append(item);
        this.render();
      }
      const textElement = item.querySelector(".text");
      if (role === "user") {
        textElement.textContent = text;
      } else {
        textElement.replaceChildren(richText(text));
        this.lastAgentMessageId = id;
      }
      item.classList.toggle("message--partial", !final);
      if (role === "user") {
        item.classList.toggle("message--pending", pending);
        item.classList.remove("message--unsent");
        if (pending) {
          this.messageStatus(item).textContent = this.strings.waitingToSend;
        } else if (item.querySelector(".message-status")) {
          item.querySelector(".message-status").remove();
        }
      }
      if (final && role !== "user" && !quiet) {
        const spoken = textElement.textContent;
        this.announcer.textContent = format(this.strings.agentSays, { name: this.config.agent.title, text: spoken });
      }
      if (nearBottom || role === "user") {
        list.scrollTop = list.scrollHeight;
      }
    }

    submitComposer() {
      const text = this.input.value.trim();
      if (!text) {
        return;
      }
      if (this.send(text)) {
        this.input.value = "";
        this.fitInput();
      }
    }

    send(text) {
      if (typeof text !== "string" || !text.trim() || this.mode === "WebAudio") {
        return false;
      }
      const reconnecting = this.state === "reconnecting";
      if (!reconnecting && (this.state !== "live" || !this.socket || this.socket.readyState !== WebSocket.OPEN)) {
        return false;
      }
      if (text.length > this.config.maxTextLength) {
        this.showNotice(this.strings.tooLong);
        return false;
      }
      const id = this.newMessageId();
      if (reconnecting) {
        this.queue(id, text.trim()); // sent once the call is back
        return true;
      }
      this.hideNotice();
      this.unconfirmed.set(id, text);
      this.socket.send(JSON.stringify({ type: "text", text, id }));
      return true;
    }

    confirm(id) {
      this.unconfirmed.delete(id);
      this.outbox = this.outbox.filter((queued) => queued.id !== id);
    }

    end() {
      if (this.state === "reconnecting" || (this.voicePending && !this.socket)) {
        this.stopReconnecting();
        this.forget();
        this.failPending();
        this.releaseVoice();
        this.voicePending = false;
        if (this.socket) {
          const socket = this.socket;
          this.socket = null;
          socket.close(1000);
        }
        this.setState("ended");
        return;
      }
      if (this.pending || (this.voice && !this.socket)) {
        if (this.pending) {
          this.pending.abort();
          this.pending = null;
        }
        this.releaseVoice();
        this.setState("ended");
        return;
      }
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.setState("ending");
        this.socket.send(JSON.stringify({ type: "end" }));
      } else if (this.socket) {
        this.socket.close();
      }
    }

    hangUp() {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify({ type: "end" }));
        this.socket.close(1000);
      }
    }

    restart() {
      this.reset();
      this.setState("idle");
      this.focusInside();
    }

    reset() {
      this.releaseVoice();
      this.stopReconnecting();
      this.forget();
      if (this.socket) {
        const socket = this.socket;
        this.socket = null;
        socket.close(1000);
      }
      this.stopPinging();
      this.callId = null;
      this.ended = null;
      this.lastError = null;
      this.endNotice = null;
      this.mode = null;
      this.socketBase = null;
      this.voicePending = false;
      this.outbox = [];
      this.unconfirmed.clear();
      this.messageElements.clear();
      this.lastAgentMessageId = null;
      this.transcript.replaceChildren();
      this.hideNotice();
    }

    releaseVoice() {
      if (this.voice) {
        const voice = this.voice;
        this.voice = null;
        voice.close();
        this.root.setAttribute("data-speaking", "false");
      }
    }

    startPinging() {
      this.stopPinging();
      this.pingTimer = window.setInterval(() => this.ping(), PING_INTERVAL_MS);
    }

    // A connection that died without a word (a phone between networks) answers no ping.
    ping() {
      const socket = this.socket;
      if (!socket || socket.readyState !== WebSocket.OPEN) {
        return;
      }
      socket.send(JSON.stringify({ type: "ping", t: Date.now() }));
      const sentAt = Date.now();
      this.awaitingPong = sentAt;
      window.clearTimeout(this.pongTimer);
      this.pongTimer = window.setTimeout(() => {
        if (this.awaitingPong === sentAt && this.socket === socket) {
          this.onClose(socket, { code: 1006 });
          socket.close(4000);
        }
      }, PONG_TIMEOUT_MS);
    }

    stopPinging() {
      window.clearInterval(this.pingTimer);
      window.clearTimeout(this.pongTimer);
      this.pingTimer = 0;
      this.awaitingPong = 0;
    }

    onAudio(buffer) {
      if (this.voice) {
        this.voice.play(buffer);
      }
    }

    onInterrupt() {
      if (this.voice) {
        if (this.voice.speaking) {
          this.markInterrupted(this.lastAgentMessageId);
        }
        this.voice.interrupt();
      }
      this.emit("interrupt", { call: this.callId });
    }

    emit(name, detail) {
      this.host.dispatchEvent(new CustomEvent(`webcall:${name}`, { detail: { agent: this.slug, ...detail }, bubbles: true, composed: true }));
    }
  }

  const api = installApi();
  const widget = new Widget(readScriptOptions(script));
  api._register(widget);
  if (document.body) {
    widget.load();
  } else {
    document.addEventListener("DOMContentLoaded", () => widget.load(), { once: true });
  }
})();
