package localserver

import "testing"

func TestMosquittoRestartKeepsPort(t *testing.T) {
	s, err := StartMosquitto(MosquittoOptions{Persistence: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.probe(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
