package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// stageList is the pipeline stages as a sentence: "review, development,
// staging or production".
func stageList() string {
	s := slipway.Stages()
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// byStage sorts couplings by stage order, then app name.
func byStage(cs []client.PipelineCoupling, stages []string) {
	sort.SliceStable(cs, func(i, j int) bool {
		si, sj := slices.Index(stages, cs[i].Stage), slices.Index(stages, cs[j].Stage)
		if si != sj {
			return si < sj
		}
		return cs[i].App.Name < cs[j].App.Name
	})
}

func appName(ref client.Ref) string {
	if ref.Name != "" {
		return ref.Name
	}
	return short(ref.ID)
}

func (cl *cli) pipelinesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipelines",
		Short: "List pipelines and their apps by stage",
		Example: `  slipway pipelines
  slipway pipelines --json`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			c, err := r.api()
			if err != nil {
				return err
			}
			ps, err := c.Pipelines(r.ctx)
			if err != nil {
				return err
			}
			sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
			if r.json {
				return r.printJSON(nonNil(ps))
			}
			if len(ps) == 0 {
				r.printf("No pipelines yet. Create one with: slipway pipelines:create NAME\n")
				return nil
			}
			cs, err := c.PipelineCouplings(r.ctx)
			if err != nil {
				return err
			}
			stages := slipway.Stages()
			byStage(cs, stages)
			rows := make([][]string, 0, len(ps))
			for _, p := range ps {
				var apps []string
				for _, cp := range cs {
					if cp.Pipeline.ID == p.ID {
						apps = append(apps, cp.Stage+": "+appName(client.Ref(cp.App)))
					}
				}
				rows = append(rows, []string{p.Name, strings.Join(apps, ", "), r.ago(p.CreatedAt)})
			}
			r.table([]string{"PIPELINE", "APPS", "CREATED"}, rows, nil)
			return nil
		}),
	}
	return withJSON(cmd)
}

func (cl *cli) pipelinesInfoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "pipelines:info PIPELINE",
		Short:   "Show a pipeline's apps by stage and their required checks",
		Example: `  slipway pipelines:info shop`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			c, err := r.api()
			if err != nil {
				return err
			}
			p, err := c.Pipeline(r.ctx, args[0])
			if err != nil {
				return err
			}
			cs, err := c.PipelineCouplingsOf(r.ctx, p.ID)
			if err != nil {
				return err
			}
			byStage(cs, slipway.Stages())
			if r.json {
				return r.printJSON(map[string]any{"pipeline": p, "couplings": nonNil(cs)})
			}
			r.heading("Pipeline " + p.Name)
			if len(cs) == 0 {
				r.printf("No apps yet. Add one with: slipway pipelines:add APP -p %s -s development\n", p.Name)
				return nil
			}
			rows := make([][]string, 0, len(cs))
			for _, cp := range cs {
				rows = append(rows, []string{cp.Stage, appName(client.Ref(cp.App)), strings.Join(cp.RequiredStatusChecks.Contexts, ", ")})
			}
			r.table([]string{"STAGE", "APP", "REQUIRED CHECKS"}, rows, nil)
			return nil
		}),
	}
	return withJSON(cmd)
}

func (cl *cli) pipelinesCreateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "pipelines:create NAME",
		Short:   "Create a pipeline",
		Example: `  slipway pipelines:create shop`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			c, err := r.api()
			if err != nil {
				return err
			}
			desc, _ := r.cmd.Flags().GetString("description")
			p, err := c.CreatePipeline(r.ctx, args[0], desc)
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(p)
			}
			r.printf("Created pipeline %s. Add apps to it with: slipway pipelines:add APP -p %s -s STAGE\n", r.paint(bold, p.Name), p.Name)
			return nil
		}),
	}
	cmd.Flags().StringP("description", "d", "", "what the pipeline is for")
	return withJSON(cmd)
}

func (cl *cli) pipelinesAddCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipelines:add APP -p PIPELINE -s STAGE",
		Short: "Couple an app to a pipeline at a stage",
		Long: `Couple an app to a pipeline at a stage: ` + stageList() + `.
--checks names the release status contexts that must be success on a
release before it may be promoted from this app (not on review).`,
		Example: `  slipway pipelines:add hello-dev -p shop -s development
  slipway pipelines:add hello-stg -p shop -s staging --checks ci/tests,ci/security`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, err := r.appOr(args)
			if err != nil {
				return err
			}
			f := r.cmd.Flags()
			pipeline, _ := f.GetString("pipeline")
			stage, _ := f.GetString("stage")
			checks, _ := f.GetStringSlice("checks")
			if pipeline == "" || stage == "" {
				return usagef("give the pipeline with -p and the stage with -s")
			}
			c, err := r.api()
			if err != nil {
				return err
			}
			nc := client.NewPipelineCoupling{App: app, Pipeline: pipeline, Stage: stage}
			if len(checks) > 0 {
				nc.RequiredStatusChecks = &client.StatusChecks{Contexts: checks}
			}
			cp, err := c.CreatePipelineCoupling(r.ctx, nc)
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(cp)
			}
			r.printf("Added %s to pipeline %s at stage %s.\n", r.paint(bold, app), pipeline, cp.Stage)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringP("pipeline", "p", "", "pipeline name or id")
	f.StringP("stage", "s", "", stageList())
	f.StringSlice("checks", nil, "required status check contexts, comma-separated")
	return withJSON(withApp(cmd))
}

// promotionResult is pipelines:promote's --json output.
type promotionResult struct {
	Promotion *client.PipelinePromotion `json:"promotion"`
	Targets   []client.PromotionTarget  `json:"targets"`
}

func (cl *cli) pipelinesPromoteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipelines:promote -a SOURCE [--to TARGET…]",
		Short: "Promote an app's current release to the apps of the next stage",
		Long: `Release the source app's current release (or --release) on target apps of
the same pipeline at a later stage: by default every app of the next stage
that has apps. Every required status check of the source's coupling must be
success on the release. Then wait until each target's release ends; the exit
code is 0 only if all succeeded.`,
		Example: `  slipway pipelines:promote -a hello-stg
  slipway pipelines:promote -a hello-dev --to hello-stg --to hello-stg2 --release v7
  slipway pipelines:promote -a hello-stg --safe --no-wait`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			app, err := r.app()
			if err != nil {
				return err
			}
			f := r.cmd.Flags()
			to, _ := f.GetStringSlice("to")
			which, _ := f.GetString("release")
			safe, _ := f.GetBool("safe")
			noWait, _ := f.GetBool("no-wait")
			c, err := r.api()
			if err != nil {
				return err
			}
			src, err := c.App(r.ctx, app)
			if err != nil {
				return err
			}
			coupling, err := c.AppPipelineCoupling(r.ctx, src.ID)
			if slipway.ErrorCode(err) == slipway.ENotFound {
				return &cliError{msg: src.Key + " is not in a pipeline.", hint: "Add it with: slipway pipelines:add " + src.Key + " -p PIPELINE -s STAGE"}
			}
			if err != nil {
				return err
			}
			np := client.NewPipelinePromotion{Pipeline: client.IDRef{ID: coupling.Pipeline.ID}, Source: client.AppRelease{App: client.SourceApp{ID: src.ID}}, Safe: safe}
			if which != "" {
				rel, err := resolveRelease(r, c, src.ID, which)
				if err != nil {
					return err
				}
				np.Source.Release = &client.IDRef{ID: rel.ID}
			}
			names := map[string]string{}
			if len(to) > 0 {
				for _, t := range to {
					a, err := c.App(r.ctx, t)
					if err != nil {
						return err
					}
					np.Targets = append(np.Targets, client.Target{App: client.IDRef{ID: a.ID}})
					names[a.ID] = a.Key
				}
			} else {
				cs, err := c.PipelineCouplingsOf(r.ctx, coupling.Pipeline.ID)
				if err != nil {
					return err
				}
				for _, cp := range nextStage(cs, coupling.Stage, slipway.Stages()) {
					np.Targets = append(np.Targets, client.Target{App: client.IDRef{ID: cp.App.ID}})
					names[cp.App.ID] = appName(client.Ref(cp.App))
				}
				if len(np.Targets) == 0 {
					return &cliError{msg: fmt.Sprintf("No app of pipeline %s is at a stage after %s.", appName(coupling.Pipeline), coupling.Stage),
						hint: "Add one with: slipway pipelines:add APP -p " + appName(coupling.Pipeline) + " -s STAGE, or name targets with --to"}
				}
			}
			promo, err := c.CreatePipelinePromotion(r.ctx, np)
			if err != nil {
				return err
			}
			if !r.json {
				var ts []string
				for _, t := range np.Targets {
					ts = append(ts, names[t.App.ID])
				}
				r.printf("Promoting %s to %s (promotion %s).\n", r.paint(bold, src.Key), strings.Join(ts, ", "), short(promo.ID))
			}
			targets, err := c.PromotionTargets(r.ctx, promo.ID)
			if err != nil {
				return err
			}
			if !noWait {
				if targets, err = r.waitTargets(c, promo.ID, targets); err != nil {
					return err
				}
			}
			if r.json {
				if err := r.printJSON(promotionResult{Promotion: promo, Targets: nonNil(targets)}); err != nil {
					return err
				}
			}
			failed := 0
			for _, t := range targets {
				name := names[t.App.ID]
				if name == "" {
					name = short(t.App.ID)
				}
				ok := t.Status == slipway.ReleaseSucceeded || t.Status == "completed" || t.Status == "success"
				if !ok && !noWait {
					failed++
				}
				if r.json {
					continue
				}
				mark := r.paint(yellow, "…")
				if !noWait {
					mark = r.paint(green, "✓")
					if !ok {
						mark = r.paint(red, "✗")
					}
				}
				line := fmt.Sprintf("%s %s: %s", mark, name, t.Status)
				if t.ErrorMessage != "" {
					line += ": " + t.ErrorMessage
				}
				r.printf("%s\n", line)
			}
			if failed > 0 {
				return &cliError{msg: fmt.Sprintf("The promotion of %s failed on %s.", src.Key, plural(failed, "target")),
					hint: "See each target's releases with: slipway releases -a TARGET"}
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringSlice("to", nil, "target app (repeat or comma-separate; default: the apps of the next stage)")
	f.String("release", "", "release of the source to promote, such as v7 (default: its current release)")
	f.Bool("safe", false, "refuse when source and target config var keys differ")
	f.Bool("no-wait", false, "return once the promotion is created")
	return withJSON(withApp(cmd))
}

// nextStage returns the couplings at the first stage after stage that has
// any.
func nextStage(cs []client.PipelineCoupling, stage string, stages []string) []client.PipelineCoupling {
	from := slices.Index(stages, stage)
	for _, s := range stages[from+1:] {
		var out []client.PipelineCoupling
		for _, cp := range cs {
			if cp.Stage == s {
				out = append(out, cp)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// waitTargets polls a promotion's targets until each has ended: its status
// is final, or its release's is.
func (r *run) waitTargets(c *client.Client, id string, targets []client.PromotionTarget) ([]client.PromotionTarget, error) {
	for {
		done := true
		for i, t := range targets {
			switch t.Status {
			case slipway.ReleaseSucceeded, slipway.ReleaseFailed, slipway.ReleaseUnknown, "error", "completed", "success", "failure":
				continue
			}
			if t.Release.ID != "" && t.App.ID != "" {
				rel, err := c.Release(r.ctx, t.App.ID, t.Release.ID)
				if err == nil && slipway.ReleaseTerminal(rel.Status) {
					targets[i].Status = rel.Status
					if targets[i].ErrorMessage == "" {
						targets[i].ErrorMessage = rel.Error
					}
					continue
				}
			}
			done = false
		}
		if done {
			return targets, nil
		}
		select {
		case <-r.ctx.Done():
			return nil, r.ctx.Err()
		case <-time.After(r.env.Poll):
		}
		next, err := c.PromotionTargets(r.ctx, id)
		if err != nil {
			return nil, err
		}
		targets = next
	}
}
