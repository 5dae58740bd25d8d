package route_test

import (
	"fmt"
	"slices"

	"github.com/choiros/eventbus/internal/route"
)

func ExampleIndex() {
	x := route.New[string](4096)
	x.Add("worker.*", "dashboard")
	x.Add("worker.*.complete", "billing")
	x.Add("*.failed", "pager")
	x.Add("worker.task.complete", "dashboard") // a second pattern: still routed once

	for _, topic := range []string{"worker.task.complete", "worker.task.failed", "chat.message"} {
		subs := slices.Clone(x.Route(topic)) // the route is shared: copy before sorting
		slices.Sort(subs)
		fmt.Println(topic, subs)
	}
	x.Remove("worker.*", "dashboard")
	fmt.Println("worker.task.failed", x.Route("worker.task.failed"))
	fmt.Println(x.Subscribers(), "subscribers,", x.Subscriptions(), "subscriptions,", x.Patterns(), "patterns")
	// Output:
	// worker.task.complete [billing dashboard]
	// worker.task.failed [dashboard pager]
	// chat.message []
	// worker.task.failed [pager]
	// 3 subscribers, 3 subscriptions, 3 patterns
}

func ExampleMatch() {
	fmt.Println(route.Match("worker.*", "worker.task.complete"))
	fmt.Println(route.Match("worker.*", "worker"))
	fmt.Println(route.Match("chat.room?", "chat.roomé"))
	// Output:
	// true
	// false
	// true
}
