package httpmw
