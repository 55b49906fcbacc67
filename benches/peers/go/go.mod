module stopwire.peers/go

go 1.19
