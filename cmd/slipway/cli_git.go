package main

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// gitCommit is the commit a folder's git repository has checked out.
type gitCommit struct {
	SHA    string
	Branch string // "" for a detached HEAD
	Time   string // the committer's time, RFC 3339
}

// headCommit returns the commit checked out in the git repository that
// holds dir, or nil when dir is in none, git is not installed or does not
// answer within a few seconds: the build is then made without it.
func headCommit(ctx context.Context, dir string) *gitCommit {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--format=%H %cI").Output()
	if err != nil {
		return nil
	}
	sha, when, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	if !ok {
		return nil
	}
	if _, err := time.Parse(time.RFC3339, when); err != nil {
		return nil
	}
	c := &gitCommit{SHA: sha, Time: when}
	if out, err := exec.CommandContext(ctx, "git", "-C", dir, "symbolic-ref", "--short", "-q", "HEAD").Output(); err == nil {
		c.Branch = strings.TrimSpace(string(out))
	}
	return c
}
