package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/regionsync/regionsync/internal/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect and check configuration files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a config file and print every problem with its path",
		Long: `validate parses FILE strictly (unknown keys, wrong types and YAML syntax are
errors), resolves ${ENV} and file: secrets, checks TLS files exist, and
validates every value. It prints each problem as "FILE:LINE: path: message"
and exits 1 when there is any, or prints a summary and exits 0. Secrets are
never printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				var probs config.Errors
				if errors.As(err, &probs) {
					for _, p := range probs {
						fmt.Fprintln(cmd.ErrOrStderr(), p.String())
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d problem(s)\n", args[0], len(probs))
				} else {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
				}
				return exitError{code: 1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d regions, %d flows)\n", args[0], len(cfg.Regions), len(cfg.Flows))
			return nil
		},
	})
	return cmd
}
