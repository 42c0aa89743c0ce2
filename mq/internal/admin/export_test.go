package admin

// ParseRoute exposes parseRoute to the tests.
var ParseRoute = parseRoute
