package tagctx
