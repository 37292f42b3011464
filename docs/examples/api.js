// Commands may be queued before the embed script has loaded: WebcallWidget is an array
// until then, and the widget runs what it holds, in order.
window.WebcallWidget = window.WebcallWidget || [];
WebcallWidget.push(
  ["on", "message", (m) => m.final && console.log(`${m.role}: ${m.text}`)],
  ["on", "state", (s) => console.log(`widget ${s.previous} -> ${s.state}`)],
  ["start", "text"],
);

// The host element's DOM events bubble, so the page can listen on the document too.
document.addEventListener("webcall:ready", (event) => {
  console.log(`call ${event.detail.call} is live (${event.detail.mode})`);
});
