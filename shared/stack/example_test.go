package stack_test

import (
	"context"
	"log"
	"os"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/stack"
)

// The deployment guide's programmatic creation and cleanup: declare the
// stack, use it, delete it. The functions' zips come from a folder (written
// by `zae-limiter lambda-export`) or from a checkout (stack.BuildCode).
func Example() {
	ctx := context.Background()
	cfg, err := awsenv.Load(ctx, awsenv.Options{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	s, err := stack.New(cfg, "dev-limiter", stack.Config{Progress: os.Stderr, Version: "v1.0.0"})
	if err != nil {
		log.Fatal(err)
	}
	res, err := s.Ensure(ctx, stack.Options{
		Parameters: map[string]string{"LogRetentionDays": "90", "EnableDeletionProtection": "false"},
		Code:       stack.FSCode{FS: os.DirFS("dist/zips"), Where: "dist/zips"},
	})
	if err != nil {
		log.Fatal(err) // a *stack.FailedError names the failing resource
	}
	log.Printf("%s is %s", s.Name(), res.Status)

	// ... acquire against the table "dev-limiter" ...

	if _, err := s.Delete(ctx); err != nil {
		log.Fatal(err)
	}
}
