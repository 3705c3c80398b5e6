package output

import (
	"bytes"
	"encoding/json"

	"github.com/pktdrop/pktdrop/internal/report"
)

// AppendJSON appends r as `-o json` writes it, without the newline: for
// other writers (pcapng comments) that carry the same object.
func AppendJSON(b []byte, r *report.Report) []byte {
	if fastJSON {
		if out, ok := appendReport(b, r); ok {
			return out[:len(out)-1]
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(r) != nil {
		return b // a time encoding/json refuses: the text comment remains
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
