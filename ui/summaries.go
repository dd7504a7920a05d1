package ui

import "sync"

// summaryCacheSize bounds the diff summaries held in memory: a few hundred
// kilobytes, the timelines of about a thousand apps.
const summaryCacheSize = 20000

// summaryCache holds the one-line diff summaries of releases by release
// id. A summary never changes (a release is compared with the release
// that was current when it was created), so entries are never updated;
// when the cache is full the older half of it is dropped. A summary is
// only shown to a session whose token just listed the release.
type summaryCache struct {
	mu       sync.Mutex
	max      int
	cur, old map[string]string
}

func (c *summaryCache) get(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.cur[id]; ok {
		return s, true
	}
	s, ok := c.old[id]
	return s, ok
}

func (c *summaryCache) put(id, summary string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		c.cur = map[string]string{}
	}
	if len(c.cur) >= c.max/2 {
		c.old, c.cur = c.cur, map[string]string{}
	}
	c.cur[id] = summary
}
