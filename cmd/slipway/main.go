// Command slipway is Slipway's server (`slipway serve`) and its CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway/runtime/local/dynoinit"
)

func main() {
	if dynoinit.IsInit() { // this binary, started again to hold a dyno
		dynoinit.Main()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, newRootCmd(), os.Getenv)
	stop()
	os.Exit(code)
}

func newRootCmd() *cobra.Command {
	root := newCLIRoot(osCLIEnv())
	root.AddCommand(newServeCmd())
	return root
}
