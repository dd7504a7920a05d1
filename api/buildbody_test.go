package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
)

// buildRecorder is an engine that keeps the sources of the builds it is
// given, and the content of their inline archives.
type buildRecorder struct {
	nopEngine
	mu      sync.Mutex
	sources []slipway.BuildSource
	files   [][]byte
}

func (e *buildRecorder) StartBuild(_ *slipway.Build, src slipway.BuildSource) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b []byte
	if src.File != "" {
		b, _ = os.ReadFile(src.File)
		os.Remove(src.File)
	}
	e.sources = append(e.sources, src)
	e.files = append(e.files, b)
}

func (e *buildRecorder) last() (slipway.BuildSource, []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.sources) == 0 {
		return slipway.BuildSource{}, nil
	}
	return e.sources[len(e.sources)-1], e.files[len(e.files)-1]
}

// withBuildRecorder serves f's store with a recording engine, a spool dir
// of its own and a 1 MiB slug limit.
func withBuildRecorder(t *testing.T, f *fixture) (*buildRecorder, string) {
	eng := &buildRecorder{}
	spool := t.TempDir()
	f.srv = api.New(api.Config{Store: f.db, Engine: eng, Runtime: stubRuntime{}, Token: "admin-token", MaxSlug: 1 << 20, SpoolDir: spool})
	return eng, spool
}

// TestCreateBuild_StreamedBody sends build bodies in the shapes JSON
// allows: the archive of a data: URI reaches the engine as a file, the
// other fields as given; bad bodies are the usual 4xx with nothing written
// and nothing left in the spool dir.
func TestCreateBuild_StreamedBody(t *testing.T) {
	f := newFixture(t)
	eng, spool := withBuildRecorder(t, f)
	archive := []byte("\x1f\x8b\x08 an archive with /+ in its base64 \xff\xfe\xfd")
	b64 := base64.StdEncoding.EncodeToString(archive)
	if !strings.ContainsAny(b64, "+/") {
		t.Fatal("the test archive should encode to + and /")
	}
	sum := sha256.Sum256(archive)
	checksum := "sha256:" + hex.EncodeToString(sum[:])
	// JSON encoders may escape / and any character as \uXXXX.
	escaped := strings.NewReplacer("/", `\/`, "+", `\u002B`, "A", `\u0041`).Replace(b64)
	ok := []struct {
		name, body string
		wantURL    string // "" for an inline archive
	}{
		{"url first", `{"url":"data:application/gzip;base64,` + b64 + `","checksum":"` + checksum + `","version":"v1"}`, ""},
		{"url last", `{"checksum":"` + checksum + `", "version":"v1",  "url" : "data:application/gzip;base64,` + b64 + `"}`, ""},
		{"escaped", `{"url":"data:application\/gzip;base64,` + escaped + `","checksum":"` + checksum + `","version":"v1"}`, ""},
		{"wrapped", `{"url":"data:application/gzip;base64,` + b64[:8] + `\r\n` + b64[8:] + `","checksum":"` + checksum + `","version":"v1"}`, ""},
		{"field name in another case", ` {"URL":"data:application/gzip;base64,` + b64 + `","Checksum":"` + checksum + `","version":"v1"} `, ""},
		{"nested and literal fields", `{"message":"a \"quoted\" {x}","url":"data:;base64,` + b64 + `","checksum":"` + checksum + `","version":"v1","author":null}`, ""},
		{"an https URL", `{"url":"https://example.com/a.tgz?sig=s3cret","checksum":"` + checksum + `","version":"v1"}`, "https://example.com/a.tgz?sig=s3cret"},
		{"a docker image", `{"url":"docker://registry.example.com/app:1","checksum":"` + checksum + `","version":"v1"}`, "docker://registry.example.com/app:1"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do("POST", "/apps/hello/builds", admin, tt.body)
			if rec.Code != 201 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			var b struct {
				SourceBlob struct{ URL, Checksum, Version string } `json:"source_blob"`
			}
			json.Unmarshal(rec.Body.Bytes(), &b)
			src, got := eng.last()
			if b.SourceBlob.Checksum != checksum || b.SourceBlob.Version != "v1" || src.Checksum != checksum {
				t.Errorf("build %s, source %+v: fields lost", rec.Body, src)
			}
			if strings.Contains(rec.Body.String(), "s3cret") {
				t.Errorf("the answer shows the URL's query: %s", rec.Body)
			}
			if tt.wantURL != "" {
				if src.URL != tt.wantURL || src.File != "" {
					t.Errorf("source = %+v, want URL %s", src, tt.wantURL)
				}
				return
			}
			if src.URL != "data:" || src.File == "" || !bytes.Equal(got, archive) || b.SourceBlob.URL != "data:" {
				t.Errorf("source %+v holds %q, shown as %q; want the archive in a file", src, got, b.SourceBlob.URL)
			}
		})
	}

	before := f.dump()
	bad := []struct {
		name, body, wantMsg string
		want                int
	}{
		{"empty", ``, "empty", 400},
		{"not an object", `[1]`, "must be an object", 400},
		{"null", `null`, "url is required", 422},
		{"cut in the url", `{"url":"data:;base64,QUJD`, "not valid JSON", 400},
		{"cut after the url", `{"url":"data:;base64,QUJD"`, "not valid JSON", 400},
		{"cut in a field", `{"url":"data:;base64,QUJD","message":{"a":`, "not valid JSON", 400},
		{"trailing data", `{"url":"data:;base64,QUJD"} {}`, "nothing after it", 400},
		{"missing comma", `{"url":"data:;base64,QUJD" "version":"x"}`, "expected , or }", 400},
		{"unquoted name", `{url:"x"}`, "expected a field name", 400},
		{"control character", "{\"url\":\"data:;base64,QU\x01JD\"}", "control character", 400},
		{"bad escape", `{"url":"data:;base64,QU\xJD"}`, "invalid escape", 400},
		{"url twice", `{"url":"data:;base64,QUJD","url":"https://example.com/a.tgz"}`, "url twice", 400},
		{"url not a string", `{"url":5}`, "Field url must be a string", 400},
		{"checksum not a string", `{"url":"data:;base64,QUJD","checksum":5}`, "Field checksum must be a string", 400},
		{"bad literal", `{"url":"data:;base64,QUJD","version":nope}`, "not valid JSON", 400},
		{"not base64", `{"url":"data:application/gzip;base64,QU*JD"}`, "not valid base64 (at character 2)", 422},
		{"not base64-encoded", `{"url":"data:text/plain,hello"}`, "not base64-encoded", 422},
		{"unknown scheme", `{"url":"ftp://example.com/a.tgz"}`, "must start with", 422},
		{"archive over the slug limit", `{"url":"data:;base64,` + strings.Repeat("A", 4<<20/3*4) + `"}`, "larger than the 1 MiB slug limit", 413},
		{"body over the limit", `{"url":"data:;base64,` + strings.Repeat(" ", 2<<20) + `"}`, "larger than the 1 MiB slug limit", 413},
		{"url over MaxBody", `{"url":"https://example.com/` + strings.Repeat("a", 1<<20) + `"}`, "url is longer than", 413},
		{"other fields over MaxBody", `{"url":"data:;base64,QUJD","message":"` + strings.Repeat("m", 1<<20) + `"}`, "other than url are larger than", 413},
		{"invalid UTF-8 in the url", "{\"url\":\"https://example.com/\xff\"}", "not valid UTF-8", 400},
		{"invalid UTF-8 in a data: URI's header", "{\"url\":\"dAtA:\xca\"}", "not valid UTF-8", 400},
		{"invalid UTF-8 in a data: URI's payload", "{\"url\":\"data:;base64,QUJD\xff\"}", "not valid UTF-8", 400},
		{"invalid UTF-8 in another field", "{\"url\":\"data:;base64,QUJD\",\"message\":\"\xfe\"}", "not valid UTF-8", 400},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do("POST", "/apps/hello/builds", admin, tt.body)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.wantMsg) {
				t.Fatalf("%d %s, want %d with %q", rec.Code, rec.Body, tt.want, tt.wantMsg)
			}
			if left, _ := os.ReadDir(spool); len(left) > 0 {
				t.Fatalf("left in the spool dir: %v", left)
			}
		})
	}
	// The recorder removed the files of the accepted builds.
	if left, _ := os.ReadDir(spool); len(left) > 0 {
		t.Errorf("left in the spool dir: %v", left)
	}
	// The accepted builds were written before `before`; the refused none.
	if after := f.dump(); after != before {
		t.Errorf("refused builds changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// inlineBuildBody is a build request whose url is a data: URI of size
// bytes, made as it is read; sum gets the archive's sha256 once read.
type inlineBuildBody struct {
	r   io.Reader
	sum func() []byte
}

func newInlineBuildBody(size int64) inlineBuildBody {
	pr, pw := io.Pipe()
	h := sha256.New()
	var done []byte
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		enc := base64.NewEncoder(base64.StdEncoding, pw)
		block := make([]byte, 32<<10)
		for i := range block {
			block[i] = byte(i * 7)
		}
		for left := size; left > 0; left -= int64(len(block)) {
			b := block[:min(int64(len(block)), left)]
			h.Write(b)
			enc.Write(b)
		}
		enc.Close()
		done = h.Sum(nil)
		pw.Close()
	}()
	r := io.MultiReader(strings.NewReader(`{"version":"big","url":"data:application/gzip;base64,`), pr, strings.NewReader(`","message":"m"}`))
	return inlineBuildBody{r: r, sum: func() []byte { wg.Wait(); return done }}
}

// hashingEngine hashes the inline archive of each build as it reads it.
type hashingEngine struct {
	nopEngine
	size int64
	sum  []byte
}

func (e *hashingEngine) StartBuild(_ *slipway.Build, src slipway.BuildSource) {
	h := sha256.New()
	if f, err := os.Open(src.File); err == nil {
		e.size, _ = io.Copy(h, f)
		f.Close()
		os.Remove(src.File)
	}
	e.sum = h.Sum(nil)
}

// TestCreateBuild_InlineArchiveMemoryStaysFlat pushes a 48 MiB inline
// build and checks that the request allocated a few buffers' worth of
// memory, not the body or the archive (64 and 48 MiB): before the body
// was streamed, it allocated over three times the body.
func TestCreateBuild_InlineArchiveMemoryStaysFlat(t *testing.T) {
	const size = 48 << 20
	f := newFixture(t)
	eng := &hashingEngine{}
	f.srv = api.New(api.Config{Store: f.db, Engine: eng, Runtime: stubRuntime{}, Token: "admin-token", MaxSlug: 64 << 20, SpoolDir: t.TempDir()})
	body := newInlineBuildBody(size)
	req := httptest.NewRequestWithContext(context.Background(), "POST", "/apps/hello/builds", body.r)
	req.Header.Set("Authorization", admin)
	rec := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f.srv.ServeHTTP(rec, req)
	runtime.ReadMemStats(&after)
	if rec.Code != 201 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if eng.size != size || !bytes.Equal(eng.sum, body.sum()) {
		t.Fatalf("the engine got %d bytes, want %d, checksum equal: %v", eng.size, size, bytes.Equal(eng.sum, body.sum()))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("a %d MiB inline build allocated %d KiB; want under 4 MiB", size>>20, alloc>>10)
	} else {
		t.Logf("a %d MiB inline build allocated %d KiB", size>>20, alloc>>10)
	}
}
