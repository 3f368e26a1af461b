package main

import (
	"testing"

	"github.com/regionsync/regionsync/internal/devstack"
)

// TestMain fails the package if any test leaves goroutines running (the dev
// stack's embedded servers included).
func TestMain(m *testing.M) { devstack.VerifyTestMain(m) }
