package remoting

// Test hooks: the two JSON header decoders, compared by FuzzJSONHeader.
var (
	DecodeJSONHeaderFast = decodeJSONHeaderFast
	DecodeJSONHeaderStd  = decodeJSONHeaderStd
)
