.PHONY: test bench

test:
	go test -race -count=1 ./...

bench:
	./scripts/bench.sh
