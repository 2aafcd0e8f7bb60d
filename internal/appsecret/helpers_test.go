package appsecret_test

import (
	"io"
	"log/slog"
	"strconv"
)

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

func itoa(n int) string { return strconv.Itoa(n) }
