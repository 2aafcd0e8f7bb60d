// Package flowbackend is a sample business backend behind the flowkey Flows
// endpoint: the code a business writes, which never sees a key or any
// cryptography. The endpoint (functions/endpoint) verifies Meta's
// signature, decrypts the request, and hands this backend the plain Flows
// request; it encrypts whatever the backend answers.
//
// The sample Flow books a table in three screens:
//
//	INIT                        -> PARTY   (party sizes to choose from)
//	data_exchange from PARTY    -> SLOT    (the times free for that party)
//	data_exchange from SLOT     -> CONFIRM (a summary)
//	data_exchange from CONFIRM  -> SUCCESS (the final response: the Flow closes and
//	                               extension_message_response.params reach the chat)
//	BACK from SLOT / CONFIRM    -> PARTY / SLOT
//	any action, flow_token "expired-..." -> status 427 with error_msg
//
// Invalid input keeps the user on the same screen with an error_message.
// Respond is a pure function of the request, so tests (and the WhatsApp
// client simulator, internal/local/waclient) can predict every answer.
//
// # The backend contract
//
// The endpoint sends, as a Lambda payload or as the body of an HTTPS POST
// (Content-Type application/json, signed with X-Flowkey-Signature-256):
//
//	{"request":  <the decrypted Flows request, as WhatsApp sent it>,
//	 "metadata": {"request_id":"...","received_at":"<RFC3339Nano>","deadline":"<RFC3339Nano>","key_label":"AWSCURRENT"}}
//
// and expects
//
//	{"status":200,"response":{"screen":"...","data":{...}}}   the next screen, or the final response
//	{"status":427,"error_msg":"..."}                          the flow token is no longer valid
//
// Anything else is a backend failure, which the endpoint answers with HTTP
// 500 (504 on a timeout): never 421, which would make WhatsApp re-fetch the
// key for nothing. Server serves this contract over HTTP; Invoke is the same
// for a Lambda function.
package flowbackend

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Screens of the sample Flow, in order, and the final one.
const (
	ScreenParty   = "PARTY"
	ScreenSlot    = "SLOT"
	ScreenConfirm = "CONFIRM"
	ScreenSuccess = "SUCCESS"
)

// Flows actions.
const (
	ActionInit         = "INIT"
	ActionDataExchange = "data_exchange"
	ActionBack         = "BACK"
	ActionPing         = "ping"
)

// ExpiredPrefix marks the flow tokens the sample treats as expired: a real
// backend would look the token up (a booking already made, a link too old).
const ExpiredPrefix = "expired-"

// ExpiredMessage is the error_msg the user sees for an expired token.
const ExpiredMessage = "This booking link has expired. Ask us for a new one in the chat."

// FlowRequest is the decrypted Flows request, as WhatsApp sends it.
type FlowRequest struct {
	Version   string         `json:"version"`
	Action    string         `json:"action"`
	Screen    string         `json:"screen,omitempty"`
	Data      map[string]any `json:"data,omitempty"`
	FlowToken string         `json:"flow_token,omitempty"`
}

// FlowResponse is one answer to WhatsApp: the screen to show and its data.
type FlowResponse struct {
	Screen string         `json:"screen,omitempty"`
	Data   map[string]any `json:"data"`
}

// Reply is the backend's answer to the endpoint (see the package doc).
type Reply struct {
	Status   int           `json:"status"`
	Response *FlowResponse `json:"response,omitempty"`
	ErrorMsg string        `json:"error_msg,omitempty"`
}

// partySizes are the sizes the PARTY screen offers.
var partySizes = []string{"1", "2", "3", "4", "5", "6"}

// Respond is the sample Flow: what the backend answers to req.
func Respond(req FlowRequest) Reply {
	if strings.HasPrefix(req.FlowToken, ExpiredPrefix) {
		return Reply{Status: 427, ErrorMsg: ExpiredMessage}
	}
	switch req.Action {
	case ActionInit:
		return show(partyScreen(""))
	case ActionBack:
		// BACK carries no form data: the device keeps what the user typed.
		if req.Screen == ScreenConfirm {
			return show(slotScreen("", ""))
		}
		return show(partyScreen(""))
	case ActionDataExchange:
		return exchange(req)
	case ActionPing:
		// The endpoint answers pings itself; a backend that gets one anyway
		// answers as Meta's health check expects.
		return show(FlowResponse{Data: map[string]any{"status": "active"}})
	}
	return Reply{Status: 400, ErrorMsg: fmt.Sprintf("unknown action %q", req.Action)}
}

func show(r FlowResponse) Reply { return Reply{Status: 200, Response: &r} }

// exchange answers a screen's submission.
func exchange(req FlowRequest) Reply {
	size, _ := req.Data["party_size"].(string)
	slot, _ := req.Data["slot"].(string)
	switch req.Screen {
	case ScreenParty:
		if !validSize(size) {
			return show(partyScreen("Choose how many people are coming."))
		}
		return show(slotScreen(size, ""))
	case ScreenSlot:
		if !validSize(size) {
			return show(partyScreen("Choose how many people are coming."))
		}
		if !validSlot(size, slot) {
			return show(slotScreen(size, "That time is not free for "+people(size)+"; choose another."))
		}
		return show(FlowResponse{Screen: ScreenConfirm, Data: map[string]any{
			"party_size": size, "slot": slot, "summary": "Table for " + people(size) + " at " + slot,
		}})
	case ScreenConfirm:
		if !validSize(size) || !validSlot(size, slot) {
			return show(partyScreen("Something changed; let's start again."))
		}
		// The final response: the Flow closes and these params arrive in the
		// chat's flow-completion message.
		return show(FlowResponse{Screen: ScreenSuccess, Data: map[string]any{
			"extension_message_response": map[string]any{"params": map[string]any{
				"flow_token": req.FlowToken, "party_size": size, "slot": slot,
			}},
		}})
	}
	return show(partyScreen("Let's start again."))
}

// option is a dropdown entry, as Flow JSON's data sources take them.
func option(id, title string) map[string]any { return map[string]any{"id": id, "title": title} }

func partyScreen(errMsg string) FlowResponse {
	sizes := make([]any, 0, len(partySizes))
	for _, s := range partySizes {
		sizes = append(sizes, option(s, people(s)))
	}
	data := map[string]any{"sizes": sizes}
	if errMsg != "" {
		data["error_message"] = errMsg
	}
	return FlowResponse{Screen: ScreenParty, Data: data}
}

// slotScreen lists the free times; size "" (after BACK) lists every time.
func slotScreen(size, errMsg string) FlowResponse {
	var slots []any
	for _, s := range Slots(size) {
		slots = append(slots, option(s, s))
	}
	data := map[string]any{"slots": slots}
	if size != "" {
		data["party_size"] = size
	}
	if errMsg != "" {
		data["error_message"] = errMsg
	}
	return FlowResponse{Screen: ScreenSlot, Data: data}
}

// Slots are the times free for a party of size: large tables only on the
// hour. Size "" lists every time.
func Slots(size string) []string {
	all := []string{"18:00", "18:30", "19:00", "19:30", "20:00", "20:30", "21:00"}
	if n, err := strconv.Atoi(size); err != nil || n <= 4 {
		return all
	}
	var out []string
	for _, s := range all {
		if strings.HasSuffix(s, ":00") {
			out = append(out, s)
		}
	}
	return out
}

// PartySizes are the sizes the PARTY screen offers.
func PartySizes() []string { return slices.Clone(partySizes) }

func validSize(size string) bool { return slices.Contains(partySizes, size) }

func validSlot(size, slot string) bool { return slices.Contains(Slots(size), slot) }

func people(size string) string {
	if size == "1" {
		return "1 person"
	}
	return size + " people"
}
