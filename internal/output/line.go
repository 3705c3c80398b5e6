package output

import (
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
	j, err := json.Marshal(r)
	if err != nil {
		return b // only a time json refuses: the text comment remains
	}
	return append(b, j...)
}
