module github.com/chronicler-dev/chronicler

go 1.26
