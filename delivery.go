package slipway

import (
	"math"
	"sort"
	"strconv"
	"time"
)

// DeliveryRecord is one release as delivery metrics read it.
type DeliveryRecord struct {
	AppID     string
	Version   int
	Trigger   string
	Status    string
	CreatedAt time.Time
	// EndedAt is when the release reached its terminal status (its last
	// update: terminal statuses never change); zero while it runs.
	EndedAt time.Time
	// RollbackOf is the version a rollback restored; 0 for other releases
	// and for rollbacks that did not record it.
	RollbackOf int
	// CommitTime is the build's commit time; zero when the build gave
	// none. BuildCreatedAt stands in for it then.
	CommitTime     time.Time
	BuildCreatedAt time.Time
}

// IsDeployment reports whether a release is a deployment: a new slug
// (deploy, promotion, auto-release), not a config change or a rollback.
func IsDeployment(trigger string) bool {
	return trigger == TriggerDeploy || trigger == TriggerPromotion || trigger == TriggerAutoRelease
}

// Delivery metric limits.
const (
	MaxDeliveryWindow = 365 * 24 * time.Hour
	// RollbackBlame is how long after a deployment succeeds a rollback
	// past it still makes it a failed change.
	RollbackBlame = 24 * time.Hour
)

// ParseDeliveryWindow reads a window such as "30d" or "12h": a whole
// number of days or hours, from 1h up to MaxDeliveryWindow; "" is 30d.
// EUnprocessable otherwise.
func ParseDeliveryWindow(s string) (time.Duration, error) {
	if s == "" {
		return 30 * 24 * time.Hour, nil
	}
	bad := Errorf(EUnprocessable, "window must be a number of days or hours such as 30d or 12h, at most 365d, not %q.", Clip(s))
	if len(s) < 2 || len(s) > 6 {
		return 0, bad
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n < 1 || s[0] == '+' {
		return 0, bad
	}
	var d time.Duration
	switch s[len(s)-1] {
	case 'd':
		d = time.Duration(n) * 24 * time.Hour
	case 'h':
		d = time.Duration(n) * time.Hour
	default:
		return 0, bad
	}
	if d > MaxDeliveryWindow {
		return 0, bad
	}
	return d, nil
}

// DeliveryMetrics are the four delivery metrics (DORA) over a window;
// docs/delivery-metrics.md defines each. Durations are nil when there is
// nothing to measure.
type DeliveryMetrics struct {
	From, To time.Time
	// Deployments is the number of deployments created in the window;
	// Succeeded, Failed (failed or unknown) and Running split them.
	Deployments, Succeeded, Failed, Running int
	PerDay                                  float64
	LeadTimeMedian, LeadTimeP90             *time.Duration
	// LeadTimeMeasured counts the succeeded deployments a lead time was
	// measured for (those whose build is still known).
	LeadTimeMeasured int
	// LeadTimeFromBuild counts the lead times that started at the
	// build's creation because the build gave no commit time.
	LeadTimeFromBuild int
	// ChangeFailures counts the ended deployments that failed, or
	// succeeded and were rolled back past within RollbackBlame;
	// ChangeFailureRate is their share of the ended deployments (nil when
	// none ended).
	ChangeFailures    int
	ChangeFailureRate *float64
	// Restored counts the change failures a later release restored;
	// Unrestored those still waiting for one.
	TimeToRestoreMedian  *time.Duration
	Restored, Unrestored int
}

// ComputeDeliveryMetrics computes the metrics of the window [to-window,
// to] from the releases of one or more apps, ordered by app and version,
// as DeliveryHistory returns them (it must hold every release created
// since the window started).
func ComputeDeliveryMetrics(recs []DeliveryRecord, to time.Time, window time.Duration) DeliveryMetrics {
	m := DeliveryMetrics{From: to.Add(-window), To: to}
	var lead, restore []time.Duration
	end := 0            // where the current app's records end
	var rollbacks []int // the indexes of its rollbacks, in order
	for i, r := range recs {
		if i >= end {
			rollbacks = rollbacks[:0]
			for end = i; end < len(recs) && recs[end].AppID == r.AppID; end++ {
				if recs[end].Trigger == TriggerRollback {
					rollbacks = append(rollbacks, end)
				}
			}
		}
		for len(rollbacks) > 0 && rollbacks[0] <= i {
			rollbacks = rollbacks[1:]
		}
		if !IsDeployment(r.Trigger) || r.CreatedAt.Before(m.From) || r.CreatedAt.After(to) {
			continue
		}
		m.Deployments++
		// The app's later releases, by version (so by creation time).
		later := recs[i+1 : end]
		var start time.Time // when the failure began; zero for none
		switch r.Status {
		case ReleaseSucceeded:
			m.Succeeded++
			begin, fromBuild := r.CommitTime, false
			if begin.IsZero() {
				begin, fromBuild = r.BuildCreatedAt, true
			}
			if !begin.IsZero() {
				lead = append(lead, max(0, r.EndedAt.Sub(begin)))
				if fromBuild {
					m.LeadTimeFromBuild++
				}
			}
			for _, j := range rollbacks {
				l := recs[j]
				if l.CreatedAt.Sub(r.EndedAt) > RollbackBlame {
					break
				}
				if l.RollbackOf > 0 && l.RollbackOf < r.Version && !l.CreatedAt.Before(r.EndedAt) && !l.CreatedAt.After(to) {
					start = r.EndedAt
					break
				}
			}
		case ReleaseFailed, ReleaseUnknown:
			m.Failed++
			start = r.EndedAt
		default:
			m.Running++
			continue
		}
		if start.IsZero() {
			continue
		}
		m.ChangeFailures++
		restored := false
		for _, l := range later {
			if l.Status == ReleaseSucceeded && l.EndedAt.After(start) && !l.EndedAt.After(to) {
				restore = append(restore, l.EndedAt.Sub(start))
				restored = true
				break
			}
		}
		if restored {
			m.Restored++
		} else {
			m.Unrestored++
		}
	}
	m.PerDay = float64(m.Succeeded) / (float64(window) / float64(24*time.Hour))
	m.LeadTimeMeasured = len(lead)
	if len(lead) > 0 {
		med, p90 := Median(lead), Percentile(lead, 90)
		m.LeadTimeMedian, m.LeadTimeP90 = &med, &p90
	}
	if ended := m.Succeeded + m.Failed; ended > 0 {
		rate := float64(m.ChangeFailures) / float64(ended)
		m.ChangeFailureRate = &rate
	}
	if len(restore) > 0 {
		med := Median(restore)
		m.TimeToRestoreMedian = &med
	}
	return m
}

// Median is the middle of ds (the mean of the two middle values of an
// even count); 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := sorted(ds)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile is the nearest-rank p-th percentile of ds: the smallest value
// that at least p% of them do not exceed; 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := sorted(ds)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

func sorted(ds []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}
