// Command slipway is Slipway's server (`slipway serve`) and its CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
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
