package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// client speaks the DynamoDB and DynamoDB Streams JSON protocol to DynamoDB
// Local, keeping each stream record exactly as the server sent it (the
// Lambda event is that JSON plus eventSourceARN). DynamoDB Local checks no
// signature, so a fixed Authorization header is enough.
type client struct {
	endpoint func() string
	http     *http.Client
}

// apiError is an error answer of the service.
type apiError struct {
	Type    string
	Message string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func isType(err error, typ string) bool {
	ae, ok := err.(*apiError)
	return ok && ae.Type == typ
}

func (c *client) call(ctx context.Context, target string, in, out any) error {
	ep := c.endpoint()
	if ep == "" {
		return &apiError{Type: "ServiceUnavailable", Message: "DynamoDB Local is not running"}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
			Msg     string `json:"Message"`
		}
		_ = json.Unmarshal(b, &e)
		typ := e.Type
		if i := strings.LastIndexByte(typ, '#'); i >= 0 {
			typ = typ[i+1:]
		}
		if typ == "" {
			typ = resp.Status
		}
		return &apiError{Type: typ, Message: e.Message + e.Msg}
	}
	return json.Unmarshal(b, out)
}

func (c *client) streamARN(ctx context.Context, table string) (string, error) {
	var out struct {
		Table struct {
			LatestStreamArn string
		}
	}
	if err := c.call(ctx, "DynamoDB_20120810.DescribeTable", map[string]string{"TableName": table}, &out); err != nil {
		return "", err
	}
	return out.Table.LatestStreamArn, nil
}

type shard struct {
	ShardId       string
	ParentShardId string
}

func (c *client) shards(ctx context.Context, arn string) ([]shard, error) {
	var all []shard
	start := ""
	for {
		in := map[string]any{"StreamArn": arn}
		if start != "" {
			in["ExclusiveStartShardId"] = start
		}
		var out struct {
			StreamDescription struct {
				Shards               []shard
				LastEvaluatedShardId string
			}
		}
		if err := c.call(ctx, "DynamoDBStreams_20120810.DescribeStream", in, &out); err != nil {
			return nil, err
		}
		all = append(all, out.StreamDescription.Shards...)
		if start = out.StreamDescription.LastEvaluatedShardId; start == "" {
			return all, nil
		}
	}
}

func (c *client) iterator(ctx context.Context, arn, shardID, typ, seq string) (string, error) {
	in := map[string]string{"StreamArn": arn, "ShardId": shardID, "ShardIteratorType": typ}
	if seq != "" {
		in["SequenceNumber"] = seq
	}
	var out struct{ ShardIterator string }
	err := c.call(ctx, "DynamoDBStreams_20120810.GetShardIterator", in, &out)
	return out.ShardIterator, err
}

func (c *client) records(ctx context.Context, it string, limit int) ([]json.RawMessage, string, error) {
	var out struct {
		Records           []json.RawMessage
		NextShardIterator *string
	}
	if err := c.call(ctx, "DynamoDBStreams_20120810.GetRecords", map[string]any{"ShardIterator": it, "Limit": limit}, &out); err != nil {
		return nil, "", err
	}
	next := ""
	if out.NextShardIterator != nil {
		next = *out.NextShardIterator
	}
	return out.Records, next, nil
}
