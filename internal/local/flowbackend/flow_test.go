package flowbackend

import (
	"encoding/json"
	"testing"
)

func reply(t *testing.T, req FlowRequest) string {
	t.Helper()
	b, err := json.Marshal(Respond(req))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A whole booking, screen by screen, as the JSON the endpoint receives.
func TestABookingFromInitToTheFinalResponse(t *testing.T) {
	steps := []struct {
		name string
		req  FlowRequest
		want string
	}{
		{"INIT shows the party sizes", FlowRequest{Version: "3.0", Action: ActionInit, FlowToken: "tok-1"},
			`{"status":200,"response":{"screen":"PARTY","data":{"sizes":[{"id":"1","title":"1 person"},{"id":"2","title":"2 people"},{"id":"3","title":"3 people"},{"id":"4","title":"4 people"},{"id":"5","title":"5 people"},{"id":"6","title":"6 people"}]}}}`},
		{"a party of 6 only gets times on the hour", FlowRequest{Version: "3.0", Action: ActionDataExchange, Screen: ScreenParty, Data: map[string]any{"party_size": "6"}, FlowToken: "tok-1"},
			`{"status":200,"response":{"screen":"SLOT","data":{"party_size":"6","slots":[{"id":"18:00","title":"18:00"},{"id":"19:00","title":"19:00"},{"id":"20:00","title":"20:00"},{"id":"21:00","title":"21:00"}]}}}`},
		{"a time moves on to the summary", FlowRequest{Version: "3.0", Action: ActionDataExchange, Screen: ScreenSlot, Data: map[string]any{"party_size": "6", "slot": "20:00"}, FlowToken: "tok-1"},
			`{"status":200,"response":{"screen":"CONFIRM","data":{"party_size":"6","slot":"20:00","summary":"Table for 6 people at 20:00"}}}`},
		{"confirming ends the Flow with the params for the chat", FlowRequest{Version: "3.0", Action: ActionDataExchange, Screen: ScreenConfirm, Data: map[string]any{"party_size": "6", "slot": "20:00"}, FlowToken: "tok-1"},
			`{"status":200,"response":{"screen":"SUCCESS","data":{"extension_message_response":{"params":{"flow_token":"tok-1","party_size":"6","slot":"20:00"}}}}}`},
	}
	for _, s := range steps {
		if got := reply(t, s.req); got != s.want {
			t.Errorf("%s:\n got %s\nwant %s", s.name, got, s.want)
		}
	}
}

func TestBackGoesToThePreviousScreen(t *testing.T) {
	for screen, want := range map[string]string{ScreenSlot: ScreenParty, ScreenConfirm: ScreenSlot, ScreenParty: ScreenParty, "": ScreenParty} {
		r := Respond(FlowRequest{Version: "3.0", Action: ActionBack, Screen: screen, Data: map[string]any{}, FlowToken: "t"})
		if r.Status != 200 || r.Response == nil || r.Response.Screen != want {
			t.Errorf("BACK from %q = %+v, want screen %s", screen, r, want)
		}
	}
	// BACK carries no form data, so SLOT lists every time.
	r := Respond(FlowRequest{Action: ActionBack, Screen: ScreenConfirm, FlowToken: "t"})
	if got := len(r.Response.Data["slots"].([]any)); got != len(Slots("")) {
		t.Errorf("BACK to SLOT lists %d times, want all %d", got, len(Slots("")))
	}
}

func TestAnExpiredTokenGets427WhateverTheAction(t *testing.T) {
	for _, action := range []string{ActionInit, ActionDataExchange, ActionBack} {
		got := reply(t, FlowRequest{Version: "3.0", Action: action, Screen: ScreenSlot, FlowToken: ExpiredPrefix + "42"})
		if want := `{"status":427,"error_msg":"` + ExpiredMessage + `"}`; got != want {
			t.Errorf("%s: %s, want %s", action, got, want)
		}
	}
}

func TestInvalidInputStaysOnTheScreenWithAMessage(t *testing.T) {
	tests := []struct {
		screen     string
		data       map[string]any
		wantScreen string
	}{
		{ScreenParty, map[string]any{"party_size": "12"}, ScreenParty},
		{ScreenParty, map[string]any{"party_size": 2}, ScreenParty}, // a number, not the dropdown's id
		{ScreenSlot, map[string]any{"party_size": "6", "slot": "18:30"}, ScreenSlot},
		{ScreenSlot, map[string]any{"slot": "18:30"}, ScreenParty},
		{ScreenConfirm, map[string]any{"party_size": "2"}, ScreenParty},
		{"NO_SUCH_SCREEN", nil, ScreenParty},
	}
	for _, tt := range tests {
		r := Respond(FlowRequest{Version: "3.0", Action: ActionDataExchange, Screen: tt.screen, Data: tt.data, FlowToken: "t"})
		if r.Status != 200 || r.Response.Screen != tt.wantScreen || r.Response.Data["error_message"] == nil {
			t.Errorf("%s %v = %+v, want %s with an error_message", tt.screen, tt.data, r.Response, tt.wantScreen)
		}
	}
}

func TestPingAndUnknownActions(t *testing.T) {
	if got, want := reply(t, FlowRequest{Version: "3.0", Action: ActionPing}), `{"status":200,"response":{"data":{"status":"active"}}}`; got != want {
		t.Errorf("ping = %s, want %s", got, want)
	}
	if r := Respond(FlowRequest{Version: "3.0", Action: "navigate"}); r.Status != 400 || r.ErrorMsg == "" {
		t.Errorf("unknown action = %+v, want a failure status with a message", r)
	}
}
