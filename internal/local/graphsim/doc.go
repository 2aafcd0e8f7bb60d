// Package graphsim simulates the parts of Meta's Graph API that flowkey
// calls, with controls to script Meta's failures. Tests, the demo and
// `make local-up` run it in place of graph.facebook.com; what Meta really
// does is what it reproduces, so clients tested against it meet no
// surprises in production.
//
// # Graph endpoints
//
//	POST /{version}/{phone-number-id}/whatsapp_business_encryption   (business_public_key)
//	GET  /{version}/{phone-number-id}/whatsapp_business_encryption   [fields; default: the status alone]
//	GET  /{version}/{waba-id}/phone_numbers                          [limit, after, before, fields]
//	GET  /{version}/{id}                                             the node's own fields
//
// As on Graph: the token is accepted as "Authorization: Bearer" (or
// "OAuth"), or as an access_token query or form parameter; POST parameters
// may be urlencoded, multipart or JSON; the version may be left out (the
// default version answers); GET returns the data[]-wrapped shape, with
// data empty while a number has no key, and a MISMATCH always carries the
// blank key " " of Meta's sample; without fields, GET answers the status
// alone, as Meta's v23 reference example of a VALID answer does, so a
// client that does not ask for business_public_key gets no key (the
// request log records the fields asked for); the list pages with opaque cursors and
// an absolute "next" URL on this server, which repeats access_token when
// the request carried it in the query, as Graph does.
//
// Errors have Graph's body {"error":{"message","type","code",
// "error_subcode","error_data","fbtrace_id"}} and its headers
// (WWW-Authenticate, facebook-api-version, x-fb-trace-id):
//
//	missing token                      104 OAuthException, HTTP 401
//	wrong token                        190 OAuthException, HTTP 401
//	revoked token                      190/460 OAuthException, HTTP 401 ("Error validating access token: The session has been invalidated ...")
//	object the token may not reach     100/33, as for an object that does not exist
//	unknown or unsupported object      100/33 GraphMethodException, HTTP 400 ("Unsupported post request. Object with ID ...")
//	bad key, missing parameter         100 OAuthException, HTTP 400, details in error_data
//	edge the object lacks              100 "Tried accessing nonexisting field (...)", HTTP 400
//	unknown version or extra path      2500 "Unknown path components: ...", HTTP 400
//	call budget spent                  80007, HTTP 400, with X-Business-Use-Case-Usage
//
// Scripted throttling faults send Meta's headers: X-App-Usage (no
// estimate) for 4, 17, 32 and 613; X-Business-Use-Case-Usage with the
// fault's regain_access for 80000-80014, 130429 and 131056.
//
// # Controls
//
// Every control is a method on *Sim, and also a JSON route under /_sim/
// for other processes (make local-up, curl). Routes answer {"ok":true} or
// the value asked for; bad input gets HTTP 400 (404 for an unknown number)
// and {"error":"graphsim: <field>: <problem>; <fix>"}. Durations are Go
// strings ("2s", "150ms"). Unknown JSON fields are rejected.
//
//	GET    /_sim/state           numbers, key fingerprints (SHA-256 of PKIX DER, hex),
//	                             statuses, what GET serves now, faults, budgets, counters,
//	                             calls in flight
//	GET    /_sim/requests        the last 512 Graph calls (of the query, only fields: never the token)
//	GET    /_sim/faults          faults in force
//	POST   /_sim/faults          {"op":"upload|get|list|other|any","object":"<id>","kind":"graph_error|http_status|delay|malformed|drop",
//	                              "code":131000,"subcode":0,"message":"","status":0,"delay":"2s","regain_access":"30m",
//	                              "malformed":"truncated|html|empty","body":"","content_type":"","times":1,"after":0}
//	                             -> 201 {"id":N}; times defaults to 1, -1 is every call
//	DELETE /_sim/faults          remove every fault; ?id=N removes fault N alone
//	POST   /_sim/lag             {"number":"<id> or empty for all","lag":"5s"}
//	POST   /_sim/mismatch        {"number":"<id> or empty for all","on":true}
//	POST   /_sim/numbers         {"action":"add","waba":"<id>","id":"<id>","display_phone_number":"...","verified_name":"..."}
//	                             {"action":"remove","id":"<id>"}   {"action":"add-waba","waba":"<id>"}
//	POST   /_sim/tokens          {"action":"add","token":"<token>","wabas":["<id>",...]}   {"action":"revoke","token":"<token>"}
//	POST   /_sim/key             {"number":"<id>","business_public_key":"<PEM>","status":"VALID|MISMATCH"}
//	POST   /_sim/reregister      {"number":"<id>"}: stored signatures go stale (MISMATCH until re-upload)
//	POST   /_sim/budget          {"waba":"<id> or empty for global","limit":200,"window":"1h","regain_access":"19m"}; limit 0 removes
//	POST   /_sim/latency         {"latency":"50ms"}
//	POST   /_sim/reset-counters
//
// The control routes have no authentication: serve them on loopback only.
//
// # A fleet of WABAs
//
// A solution partner's fleet is many WABAs, each with its own numbers and,
// often, its own business-integration token. AddDemoWABA adds a WABA with
// numbers from FleetNumbers, whose 15-digit IDs are derived from the WABA
// ID, so that no two WABAs share a number (NewDemo and DemoNumbers keep
// their fixed IDs, the same for every WABA). Options.Token is the default
// token and reaches every WABA; AddToken adds a token that reaches only
// the WABAs it names and their numbers. Anything else answers that token
// as Graph answers an object it may not see, 100/33. RevokeToken makes
// Graph answer the token with 190/460, HTTP 401, from the next call on,
// as Meta answers a token the business revoked or that expired; a revoked
// token is never accepted again (issue a new one with AddToken).
//
// # Semantics of the controls
//
// Lag: after an upload, GET keeps answering with the key (and status) Meta
// held before it until the lag has passed; time comes from Options.Now.
// Forced MISMATCH overrides what GET shows until switched off, uploads
// included; Reregister instead marks the stored key MISMATCH until the next
// upload, as a re-registration at Meta does. Keys and Registration report
// the truth, without lag.
//
// Faults answer the next matching calls in the order added, before
// authentication and budget checks; a delay then lets the call proceed.
// Budgets count authenticated calls in a sliding window; refused calls do
// not count. Counters count every call that reached the Graph handler,
// whatever its outcome.
//
// The simulator never logs the token or a key: keys appear as fingerprints.
package graphsim
