// Command etcd is the upstream etcd server, built unchanged from the published
// go.etcd.io/etcd/server/v3 module for kubevents' end-to-end tests.
// See tests/servers/README.md.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
