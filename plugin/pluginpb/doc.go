// Package pluginpb holds the Go code of the plugin protocol, generated from plugin.proto by
// protoc-gen-go and protoc-gen-go-grpc (the versions go.mod pins as tools). The generated files
// are committed; regenerate them with `go generate ./plugin/pluginpb` (needs protoc from Debian's
// protobuf-compiler). Plugins in other languages generate their stubs from the same file.
package pluginpb

//go:generate sh -c "go build -o .gen/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc && protoc --plugin=protoc-gen-go=.gen/protoc-gen-go --plugin=protoc-gen-go-grpc=.gen/protoc-gen-go-grpc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto; s=$?; rm -rf .gen; exit $s"
