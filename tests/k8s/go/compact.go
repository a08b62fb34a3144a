package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	kversion "k8s.io/component-base/version"
)

func version() string { return kversion.Get().String() }

// etcdCompact compacts the whole keyspace at the current revision, so that
// any watch from an older resourceVersion gets 410 Gone once the
// apiserver's watch cache no longer has it.
func etcdCompact(args []string) int {
	fs := flag.NewFlagSet("etcd-compact", flag.ExitOnError)
	endpoints := fs.String("endpoints", "http://127.0.0.1:2379", "comma-separated etcd endpoints")
	fs.Parse(args)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(*endpoints, ","),
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-compact:", err)
		return 1
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Write a key so that the revision is past every existing object.
	put, err := cli.Put(ctx, "/kpar-compact-marker", time.Now().String())
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-compact: put:", err)
		return 1
	}
	rev := put.Header.Revision
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		fmt.Fprintln(os.Stderr, "etcd-compact: compact:", err)
		return 1
	}
	fmt.Println(rev)
	return 0
}
