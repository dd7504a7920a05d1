package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"time"
)

// The servers run with --log-level debug: the runtimes' progress
// reporter logs each event of a rollout with the app's id, so each
// server's log says which apps it rolled out and when.
var eventRE = regexp.MustCompile(`^time=(\S+) level=DEBUG .* app=(\S+) event=`)

type event struct {
	at     time.Time
	server int
}

// rolloutEvents reads every server's log: the progress events by app.
func (s *scale) rolloutEvents() (map[string][]event, error) {
	out := map[string][]event{}
	for i, srv := range s.servers {
		f, err := os.Open(srv.log.Name())
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			m := eventRE.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				continue
			}
			out[m[2]] = append(out[m[2]], event{at: at, server: i})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	for _, evs := range out {
		sort.Slice(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	}
	return out, nil
}

// window is a phase of the run in which each app has one piece of work.
type window struct {
	name       string
	start, end time.Time
}

// checkNoOverlap holds, for each phase and app, that one server rolled the
// app out, or several one after another where each but the last had died
// before the next began: never two at the same time. It also counts, per
// phase, the apps each server finished (its events came last).
func (s *scale) checkNoOverlap(windows []window) error {
	events, err := s.rolloutEvents()
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("no rollout events in the servers' logs (--log-level debug)")
	}
	var bad []string
	s.rep.finishedBy = make([][]int, len(windows))
	for wi, w := range windows {
		s.rep.finishedBy[wi] = make([]int, len(s.servers))
		for _, a := range s.apps {
			last := -1
			var lastAt time.Time
			for _, ev := range events[a.id] {
				if ev.at.Before(w.start) || ev.at.After(w.end) {
					continue
				}
				if last >= 0 && ev.server != last {
					dead := s.servers[last].killed
					if dead.IsZero() || dead.After(ev.at) {
						bad = append(bad, fmt.Sprintf("%s, %s: %s at %s then %s at %s while %s ran",
							w.name, a.name, s.servers[last].name, lastAt.Format("15:04:05.000"), s.servers[ev.server].name, ev.at.Format("15:04:05.000"), s.servers[last].name))
						break
					}
					s.rep.handovers++
				}
				last, lastAt = ev.server, ev.at
			}
			if last >= 0 {
				s.rep.finishedBy[wi][last]++
			}
		}
	}
	s.rep.windows = windows
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
		}
		return fmt.Errorf("%v", bad)
	}
	return nil
}
