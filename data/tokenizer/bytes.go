package tokenizer

// byteUnits returns GPT-2/CLIP's reversible bytes-to-unicode table in
// vocabulary order: printable Latin-1 bytes map to themselves, the remaining
// bytes map to code points from U+0100 upwards. order lists the bytes in the
// order CLIP builds its vocabulary from them.
func byteUnits() (enc [256]rune, order [256]byte) {
	n := 0
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	for b := 0; b < 256; b++ {
		if printable(b) {
			enc[b] = rune(b)
			order[n] = byte(b)
			n++
		}
	}
	extra := 0
	for b := 0; b < 256; b++ {
		if !printable(b) {
			enc[b] = rune(256 + extra)
			extra++
			order[n] = byte(b)
			n++
		}
	}
	return enc, order
}
