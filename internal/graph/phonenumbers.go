package graph

import (
	"context"
	"net/http"
	"net/url"
)

// maxPages stops a paging loop that neither repeats a cursor nor ends.
// At Graph's default page size that is thousands of numbers, far beyond
// any WABA's limit.
const maxPages = 1000

type phonePage struct {
	Data   *[]PhoneNumber `json:"data"`
	Paging *struct {
		Cursors struct {
			After string `json:"after"`
		} `json:"cursors"`
		Next string `json:"next"`
	} `json:"paging"`
}

// PhoneNumbers is GET /{version}/{wabaID}/phone_numbers, following paging.
//
// paging.next is followed only when it points at the base URL's scheme,
// host and port; otherwise the next page is rebuilt from cursors.after, so
// the token never goes to a host the operator did not configure. An ID
// listed twice is returned once. Any failure returns no numbers at all: a
// partial list would make a rotation skip numbers silently.
func (c *Client) PhoneNumbers(ctx context.Context, auth Auth, wabaID string) ([]PhoneNumber, error) {
	const op = "list"
	if err := c.checkCall(op, "WABA ID", wabaID, auth); err != nil {
		return nil, err
	}
	red := newRedactor(auth.Token.value)
	first := c.endpoint(auth.Version, wabaID, "phone_numbers")
	next := first
	var (
		numbers    []PhoneNumber
		seenID     = map[string]bool{}
		seenURL    = map[string]bool{}
		seenCursor = map[string]bool{}
	)
	stop := func(format string, args ...any) error {
		return &Error{Op: op, Object: wabaID, Failure: FailureMalformed, HTTPStatus: http.StatusOK, Attempts: 1, Err: red.wrap(malformed(format, args...)), TokenSecret: auth.TokenSecret}
	}
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, stop("paging did not end after %d pages", maxPages)
		}
		key := next.String()
		if seenURL[key] {
			return nil, stop("paging loops: page %d repeats an earlier page's URL", page)
		}
		seenURL[key] = true

		var p phonePage
		rq := request{op: op, object: wabaID, method: http.MethodGet, url: next}
		err := c.do(ctx, auth, rq, red, func(body []byte) (err error) {
			p, err = decodePhonePage(body)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, n := range *p.Data {
			if !seenID[n.ID] {
				seenID[n.ID] = true
				numbers = append(numbers, n)
			}
		}
		if p.Paging == nil || p.Paging.Next == "" {
			return numbers, nil
		}
		after := p.Paging.Cursors.After
		if after != "" {
			if seenCursor[after] {
				return nil, stop("paging loops: cursor after repeats on page %d", page)
			}
			seenCursor[after] = true
		}
		u, err := url.Parse(p.Paging.Next)
		switch {
		case err == nil && u.IsAbs() && c.sameOrigin(u):
			// The token travels in the header; an access_token Meta may
			// have echoed into the URL must not sit in logs or errors.
			q := u.Query()
			q.Del("access_token")
			u.RawQuery = q.Encode()
			u.Fragment, u.RawFragment = "", ""
			next = u
		case after != "":
			u := *first
			u.RawQuery = url.Values{"after": {after}}.Encode()
			next = &u
		default:
			return nil, stop("paging.next is not on %s and there is no cursors.after to rebuild it from; not following it with the token", c.base)
		}
	}
}

// decodePhonePage decodes one page of the listing. A page without a data
// array, or with an ID that is not a Graph ID, is malformed.
func decodePhonePage(body []byte) (phonePage, error) {
	var p phonePage
	if err := decodeObject(body, &p); err != nil {
		return phonePage{}, err
	}
	if p.Data == nil {
		return phonePage{}, malformed("no data array")
	}
	for i, n := range *p.Data {
		if checkID("id", n.ID) != nil {
			return phonePage{}, malformed("data[%d].id %q is not decimal digits", i, clip(n.ID, 40))
		}
	}
	return p, nil
}
