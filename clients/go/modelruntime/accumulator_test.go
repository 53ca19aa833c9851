package modelruntime_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/modelruntime/modelruntime/clients/go/modelruntime"
	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

func TestAccumulator(t *testing.T) {
	opaque, err := structpb.NewStruct(map[string]any{"signature": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	toolDelta := func(index int32, id, name, args string) *modelruntimev1.ToolCallDelta {
		return &modelruntimev1.ToolCallDelta{Index: index, Id: id, Type: map[bool]string{true: "function"}[id != ""],
			Function: &modelruntimev1.ToolCallFunction{Name: name, Arguments: args}}
	}
	chunks := []*modelruntimev1.LLMResultChunk{
		{Model: "m", Delta: &modelruntimev1.LLMResultChunkDelta{Message: &modelruntimev1.AssistantPromptMessageDelta{ReasoningContent: "Let me "}}},
		{Delta: &modelruntimev1.LLMResultChunkDelta{Message: &modelruntimev1.AssistantPromptMessageDelta{ReasoningContent: "think."}}},
		{Delta: &modelruntimev1.LLMResultChunkDelta{Message: &modelruntimev1.AssistantPromptMessageDelta{Content: "Hello "}}},
		{Delta: &modelruntimev1.LLMResultChunkDelta{Message: &modelruntimev1.AssistantPromptMessageDelta{Content: "world"}}},
		// Two calls, their fragments interleaved, the second announced first.
		{Delta: &modelruntimev1.LLMResultChunkDelta{Message: &modelruntimev1.AssistantPromptMessageDelta{ToolCalls: []*modelruntimev1.ToolCallDelta{
			toolDelta(1, "call_1", "b", ""), toolDelta(0, "call_0", "a", `{"x":`)}}}},
		{Delta: &modelruntimev1.LLMResultChunkDelta{Message: &modelruntimev1.AssistantPromptMessageDelta{ToolCalls: []*modelruntimev1.ToolCallDelta{
			toolDelta(1, "", "", `{}`), toolDelta(0, "", "", `1}`)}}}},
		{Delta: &modelruntimev1.LLMResultChunkDelta{Message: &modelruntimev1.AssistantPromptMessageDelta{OpaqueBody: opaque}}},
		{Model: "m-2024", SystemFingerprint: "fp", Delta: &modelruntimev1.LLMResultChunkDelta{
			Usage: &modelruntimev1.LLMUsage{TotalTokens: 7}, FinishReason: "tool_calls"}},
	}
	var acc modelruntime.Accumulator
	for _, c := range chunks {
		acc.Add(c)
	}
	want := &modelruntimev1.LLMResult{
		Model: "m-2024",
		Message: &modelruntimev1.PromptMessage{
			Role:    modelruntimev1.PromptMessageRole_PROMPT_MESSAGE_ROLE_ASSISTANT,
			Content: "Hello world",
			ToolCalls: []*modelruntimev1.ToolCall{
				{Id: "call_0", Type: "function", Function: &modelruntimev1.ToolCallFunction{Name: "a", Arguments: `{"x":1}`}},
				{Id: "call_1", Type: "function", Function: &modelruntimev1.ToolCallFunction{Name: "b", Arguments: `{}`}},
			},
			OpaqueBody: opaque,
		},
		Usage:             &modelruntimev1.LLMUsage{TotalTokens: 7},
		SystemFingerprint: "fp",
		ReasoningContent:  "Let me think.",
		FinishReason:      "tool_calls",
	}
	if got := acc.Result(); !proto.Equal(got, want) {
		t.Errorf("Result():\n got %v\nwant %v", got, want)
	}

	var empty modelruntime.Accumulator
	if got := empty.Result(); got.GetMessage().GetContent() != "" || len(got.GetMessage().GetToolCalls()) != 0 {
		t.Errorf("empty: %v", got)
	}
}
