package admin

// ParseRoute exposes parseRoute to the tests.
var ParseRoute = parseRoute

// ParseMasters exposes parseMasters to the tests.
var ParseMasters = parseMasters
