module github.com/modelruntime/modelruntime/bench

go 1.25.0

require (
	github.com/modelruntime/modelruntime/clients/go v0.0.0
	google.golang.org/grpc v1.84.0
)

require (
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.40.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260706201446-f0a921348800 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// The load generator calls the service through the repository's own Go stubs, as they are.
replace github.com/modelruntime/modelruntime/clients/go => ../clients/go
