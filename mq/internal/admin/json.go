package admin

// fastjson, which a Java name server writes route bodies with, leaves
// numeric map keys unquoted ({0:"127.0.0.1:10911"}); encoding/json refuses
// them.

// quoteNumericKeys quotes object keys written as bare integers, leaving
// strings alone.
func quoteNumericKeys(b []byte) []byte {
	out := make([]byte, 0, len(b)+8)
	inString, escaped := false, false
	expectKey := false
	var stack []byte // open containers: '{' or '['
	inObject := func() bool { return len(stack) > 0 && stack[len(stack)-1] == '{' }
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if inString {
			out = append(out, ch)
			switch {
			case escaped:
				escaped = false
			case ch == '\\':
				escaped = true
			case ch == '"':
				inString = false
			}
			continue
		}
		switch {
		case ch == '"':
			inString, expectKey = true, false
		case ch == '{' || ch == '[':
			stack = append(stack, ch)
			expectKey = ch == '{'
		case ch == '}' || ch == ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ch == ',':
			expectKey = inObject()
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
		case expectKey && (ch == '-' || ch >= '0' && ch <= '9'):
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			out = append(out, '"')
			out = append(out, b[i:j]...)
			out = append(out, '"')
			i = j - 1
			expectKey = false
			continue
		default:
			expectKey = false
		}
		out = append(out, ch)
	}
	return out
}
