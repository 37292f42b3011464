// node --test of the widget needs mock.timers with Date (Node 20.11) and module detection of its .js files.
const [major, minor] = process.versions.node.split(".").map(Number)
if (major < 20 || (major === 20 && minor < 11)) {
	console.error(`The widget's unit tests need Node 20.11 or later; this is Node ${process.version}.`)
	process.exit(1)
}
