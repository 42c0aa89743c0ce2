module github.com/taglane/taglane/examples

go 1.26.0

replace (
	github.com/taglane/taglane => ../
	github.com/taglane/taglane/mq => ../mq
)
