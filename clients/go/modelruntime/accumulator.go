package modelruntime

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

// Accumulator assembles streamed chunks into the LLMResult that InvokeLLM would return.
//
// Content, reasoning and refusal pieces are joined in order; tool-call fragments are joined by
// their Index (the first fragment of a call brings its id, type and name, every fragment a
// piece of its arguments); the last model, system fingerprint, usage and finish reason seen
// win. The zero value is ready to use:
//
//	var answer modelruntime.Accumulator
//	for chunk, err := range stream.Chunks() {
//		...
//		answer.Add(chunk)
//	}
//	result := answer.Result() // result.GetMessage() can go straight back into the conversation
type Accumulator struct {
	content, reasoning, refusal []string
	toolCalls                   map[int32]*partialToolCall
	opaqueBody                  *structpb.Struct
	usage                       *modelruntimev1.LLMUsage
	finishReason                string
	model, systemFingerprint    string
}

type partialToolCall struct {
	id, typ, name string
	arguments     []string
}

// Add takes in the next chunk.
func (a *Accumulator) Add(chunk *modelruntimev1.LLMResultChunk) {
	if chunk.GetModel() != "" {
		a.model = chunk.GetModel()
	}
	if chunk.GetSystemFingerprint() != "" {
		a.systemFingerprint = chunk.GetSystemFingerprint()
	}
	delta := chunk.GetDelta()
	message := delta.GetMessage()
	a.content = appendPiece(a.content, message.GetContent())
	a.reasoning = appendPiece(a.reasoning, message.GetReasoningContent())
	a.refusal = appendPiece(a.refusal, message.GetRefusal())
	for _, fragment := range message.GetToolCalls() {
		if a.toolCalls == nil {
			a.toolCalls = map[int32]*partialToolCall{}
		}
		call := a.toolCalls[fragment.GetIndex()]
		if call == nil {
			call = &partialToolCall{}
			a.toolCalls[fragment.GetIndex()] = call
		}
		if call.id == "" {
			call.id = fragment.GetId()
		}
		if call.typ == "" {
			call.typ = fragment.GetType()
		}
		if call.name == "" {
			call.name = fragment.GetFunction().GetName()
		}
		call.arguments = appendPiece(call.arguments, fragment.GetFunction().GetArguments())
	}
	if message.GetOpaqueBody() != nil {
		a.opaqueBody = message.GetOpaqueBody()
	}
	if delta.GetUsage() != nil {
		a.usage = delta.GetUsage()
	}
	if delta.GetFinishReason() != "" {
		a.finishReason = delta.GetFinishReason()
	}
}

// Result returns the answer so far as an LLMResult whose Message is an assistant message with
// the content and the complete tool calls, in index order.
func (a *Accumulator) Result() *modelruntimev1.LLMResult {
	message := &modelruntimev1.PromptMessage{
		Role:       modelruntimev1.PromptMessageRole_PROMPT_MESSAGE_ROLE_ASSISTANT,
		Content:    strings.Join(a.content, ""),
		OpaqueBody: a.opaqueBody,
	}
	indexes := make([]int32, 0, len(a.toolCalls))
	for index := range a.toolCalls {
		indexes = append(indexes, index)
	}
	slices.Sort(indexes)
	for _, index := range indexes {
		call := a.toolCalls[index]
		typ := call.typ
		if typ == "" {
			typ = "function"
		}
		message.ToolCalls = append(message.ToolCalls, &modelruntimev1.ToolCall{
			Id:       call.id,
			Type:     typ,
			Function: &modelruntimev1.ToolCallFunction{Name: call.name, Arguments: strings.Join(call.arguments, "")},
		})
	}
	return &modelruntimev1.LLMResult{
		Model:             a.model,
		Message:           message,
		Usage:             a.usage,
		SystemFingerprint: a.systemFingerprint,
		ReasoningContent:  strings.Join(a.reasoning, ""),
		Refusal:           strings.Join(a.refusal, ""),
		FinishReason:      a.finishReason,
	}
}

func appendPiece(pieces []string, piece string) []string {
	if piece == "" {
		return pieces
	}
	return append(pieces, piece)
}
