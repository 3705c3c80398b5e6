package filterexpr

import "strings"

type tokKind int

const (
	tEOF  tokKind = iota
	tWord         // keyword, name, number or address
	tOp           // punctuation: ( ) [ ] & | ! && || == != < <= > >= = + - * / << >>
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the expression
}

// Words may hold '.', ':', '/' and '-' after their first character, so
// addresses (fd00::1, 10.0.0.0/8), ranges (1000-2000) and names (tcp-syn)
// are one token each, as in libpcap's scanner. Arithmetic minus and
// division therefore need a space or a non-word character before them.
func isWordStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '\\' || c == ':' || c == '.'
}

func isWordChar(c byte) bool {
	return isWordStart(c) || c == '-' || c == '/'
}

var twoCharOps = []string{"&&", "||", "==", "!=", "<=", ">=", "<<", ">>"}

const oneCharOps = "()[]&|!<>=+-*/"

func lex(s string) ([]token, *posError) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isWordStart(c):
			j := i + 1
			for j < len(s) && isWordChar(s[j]) {
				j++
			}
			toks = append(toks, token{tWord, s[i:j], i})
			i = j
		default:
			if i+1 < len(s) {
				two := s[i : i+2]
				found := false
				for _, op := range twoCharOps {
					if two == op {
						toks = append(toks, token{tOp, two, i})
						i += 2
						found = true
						break
					}
				}
				if found {
					continue
				}
			}
			if strings.IndexByte(oneCharOps, c) < 0 {
				return nil, &posError{pos: i, msg: "unexpected character " + quoteChar(s, i)}
			}
			toks = append(toks, token{tOp, string(c), i})
			i++
		}
	}
	return append(toks, token{tEOF, "", len(s)}), nil
}

func quoteChar(s string, i int) string {
	r := []rune(s[i:])
	return "'" + string(r[0]) + "'"
}
