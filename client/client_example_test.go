package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

// Example creates a sandbox, runs two Python cells in the same session and
// deletes the sandbox. The client finds the server through WARDEN_URL and
// WARDEN_API_KEY.
func Example() {
	ctx := context.Background()
	c, err := client.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	sb, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Delete(context.WithoutCancel(ctx), sb.ID)

	if _, err := c.Execute(ctx, sb.ID, client.ExecuteOptions{Code: "x = 6 * 7"}); err != nil {
		log.Fatal(err)
	}
	res, err := c.Execute(ctx, sb.ID, client.ExecuteOptions{Code: "print('x is', x)\nx + 1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(res.Stdout)
	fmt.Println("value:", *res.ReturnValue)
	// Output:
	// x is 42
	// value: 43
}

// ExampleClient_Execute_errors shows that a Python exception is a result,
// not an error: the traceback comes back and the session lives on.
func ExampleClient_Execute_errors() {
	ctx := context.Background()
	c, _ := client.NewFromEnv()
	sb, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Delete(context.WithoutCancel(ctx), sb.ID)

	res, err := c.Execute(ctx, sb.ID, client.ExecuteOptions{Code: "n = 1\n1 / 0"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Success, res.ExitCode, res.Error.Name, "at line", res.Error.Line)
	res, _ = c.Execute(ctx, sb.ID, client.ExecuteOptions{Code: "n"})
	fmt.Println("n =", *res.ReturnValue)
	// Output:
	// false 1 ZeroDivisionError at line 2
	// n = 1
}

// ExampleClient_Run runs one Python cell in a sandbox made for it alone,
// which is gone when Run returns: nothing to delete.
func ExampleClient_Run() {
	ctx := context.Background()
	c, _ := client.NewFromEnv()
	res, err := c.Run(ctx, client.RunOptions{
		CreateOptions:  client.CreateOptions{EnvironmentVariables: map[string]string{"GREETING": "hello"}},
		ExecuteOptions: client.ExecuteOptions{Code: "import os\nprint(os.environ['GREETING'])\n6 * 7"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(res.Stdout)
	fmt.Println("value:", *res.ReturnValue)
	// Output:
	// hello
	// value: 42
}

// ExampleClient_Execute_stream runs a shell command and prints its output
// as it arrives.
func ExampleClient_Execute_stream() {
	ctx := context.Background()
	c, _ := client.NewFromEnv()
	sb, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Delete(context.WithoutCancel(ctx), sb.ID)

	res, err := c.Execute(ctx, sb.ID, client.ExecuteOptions{
		Language: api.Shell,
		Code:     "for i in 1 2 3; do echo line $i; done; exit 3",
		OnOutput: func(s api.Stream, p []byte) { fmt.Print(string(p)) }, // as it arrives
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit code", res.ExitCode)
	// Output:
	// line 1
	// line 2
	// line 3
	// exit code 3
}

// ExampleClient_Upload puts a file into the workspace, lets Python change
// it, and reads the result back.
func ExampleClient_Upload() {
	ctx := context.Background()
	c, _ := client.NewFromEnv()
	sb, err := c.Create(ctx, client.CreateOptions{EnvironmentVariables: map[string]string{"GREETING": "hello"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Delete(context.WithoutCancel(ctx), sb.ID)

	if _, err := c.Upload(ctx, sb.ID, "data/in.txt", strings.NewReader("warden")); err != nil {
		log.Fatal(err)
	}
	code := `import os
text = open("data/in.txt").read()
open("data/out.txt", "w").write(os.environ["GREETING"] + ", " + text)`
	if _, err := c.Execute(ctx, sb.ID, client.ExecuteOptions{Code: code}); err != nil {
		log.Fatal(err)
	}
	rc, err := c.Download(ctx, sb.ID, "data/out.txt")
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	out, _ := io.ReadAll(rc)
	fmt.Println(string(out))

	list, _ := c.ListFiles(ctx, sb.ID, "data")
	for _, e := range list.Entries {
		fmt.Println(e.Name, e.Type, e.Size)
	}
	// Output:
	// hello, warden
	// in.txt file 6
	// out.txt file 13
}

// ExampleAPIError tells error classes apart with errors.Is and reads the
// details with errors.As.
func ExampleAPIError() {
	ctx := context.Background()
	c, _ := client.NewFromEnv()
	_, err := c.Get(ctx, "sb-0000000000000000")
	fmt.Println(errors.Is(err, client.ErrNotFound))
	var ae *client.APIError
	if errors.As(err, &ae) {
		fmt.Println(ae.StatusCode, ae.Code)
	}
	// Output:
	// true
	// 404 not_found
}
