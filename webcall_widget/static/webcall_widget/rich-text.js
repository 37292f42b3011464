// Agent text: a little Markdown (docs/widget.md)
const INLINE =
	/`([^`\n]+)`|\*\*(\S(?:[^*\n]*\S)?)\*\*|\*(\S(?:[^*\n]*\S)?)\*|\[([^\]\n]+)\]\(([^\s)]+)\)|(https?:\/\/[^\s<>()]*[^\s<>().,;:!?'"])/g
const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"])
const BULLET = /^\s*([-*\u2022])\s+(.*)$/
const NUMBERED = /^\s*(\d{1,3})[.)]\s+(.*)$/

/** @param {H} h @param {string} href @param {string} label */
function link(h, href, label) {
	let url
	try {
		url = new URL(href)
	} catch {
		return label
	}
	return LINK_PROTOCOLS.has(url.protocol)
		? h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer nofollow" }, [label])
		: label
}

/** @param {H} h @param {string} text */
function inline(h, text) {
	const nodes = []
	let last = 0
	for (const match of text.matchAll(INLINE)) {
		const [whole, code, bold, italic, label, href, bare] = match
		nodes.push(
			text.slice(last, match.index),
			code
				? h("code", {}, [code])
				: bold
					? h("strong", {}, [bold])
					: italic
						? h("em", {}, [italic])
						: link(h, href || bare, label || bare),
		)
		last = match.index + whole.length
	}
	nodes.push(text.slice(last))
	return nodes
}

/** @type {RichText} */
export const richText = (h, text) => {
	const fragment = document.createDocumentFragment()
	/** @type {string[]} */
	let paragraph = []
	let list = null
	const flush = () => {
		if (paragraph.length) {
			fragment.append(h("p", {}, inline(h, paragraph.join("\n"))))
			paragraph = []
		}
	}
	for (const line of text.split("\n")) {
		const bullet = BULLET.exec(line)
		const item = bullet || NUMBERED.exec(line)
		if (item) {
			flush()
			const tag = bullet ? "ul" : "ol"
			if (!list || list.localName !== tag) {
				list = h(tag, !bullet && item[1] !== "1" ? { start: item[1] } : {})
				fragment.append(list)
			}
			list.append(h("li", {}, inline(h, item[2])))
		} else if (line.trim() === "") {
			flush()
			list = null
		} else {
			list = null
			paragraph.push(line)
		}
	}
	flush()
	return fragment
}
