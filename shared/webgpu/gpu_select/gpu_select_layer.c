/*
 * VK_LAYER_KVRELAY_gpu_select: a Vulkan instance layer that shows a process one GPU, the one
 * KVRELAY_GPU names, as CUDA_VISIBLE_DEVICES does for CUDA. Why a layer: onnxruntime's WebGPU
 * provider (Dawn) and Deno's WebGPU (wgpu) both take the first high-performance adapter, and
 * neither lets us pick one; NVIDIA's Vulkan driver ignores CUDA_VISIBLE_DEVICES; and hiding
 * /dev/nvidiaN from a process makes that driver's enumeration fail.
 *
 * KVRELAY_GPU=N: the N-th physical device, counting NVIDIA's GPUs first in PCI address order (the
 * order nvidia-smi numbers them in, and CUDA with CUDA_DEVICE_ORDER=PCI_BUS_ID), then other devices
 * with a PCI address in that order, then the rest in the driver's order. Unset or empty: every device, untouched. No such device: none (the application then
 * finds no adapter; one line on stderr says why). KVRELAY_GPU_SELECT_LIST=1 prints the devices
 * in that order on stderr.
 *
 * Instance functions only, as Mesa's device-select layer does: the layer gives the loader no
 * vkGetDeviceProcAddr, so it is left out of every device's call chain.
 *
 * Build: infra/gpu/build_gpu_select.sh. Enabled per process by shared/webgpu/gpu_select/select.ts.
 */
#include <vulkan/vk_layer.h>
#include <vulkan/vulkan.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAYER_EXPORT __attribute__((visibility("default")))
#define MAX_INSTANCES 64

struct instance_entry {
  void *key; /* the loader's dispatch pointer: the first word of the handle */
  VkInstance instance;
  PFN_vkGetInstanceProcAddr next_gipa;
  PFN_GetPhysicalDeviceProcAddr next_gpdpa;
  PFN_vkDestroyInstance destroy;
  PFN_vkEnumeratePhysicalDevices enumerate;
  PFN_vkEnumeratePhysicalDeviceGroups enumerate_groups;
  PFN_vkEnumerateDeviceExtensionProperties device_extensions;
  PFN_vkGetPhysicalDeviceProperties properties;
  PFN_vkGetPhysicalDeviceProperties2 properties2;
};

static struct instance_entry instances[MAX_INSTANCES];
static pthread_mutex_t instances_lock = PTHREAD_MUTEX_INITIALIZER;

/* Messages go out once a process: applications enumerate many times. */
static int said_bad_index, said_no_device, said_list;

static void *dispatch_key(const void *handle) { return *(void *const *)handle; }

static struct instance_entry *find_instance(const void *handle) {
  void *key = dispatch_key(handle);
  struct instance_entry *found = NULL;
  pthread_mutex_lock(&instances_lock);
  for (int i = 0; i < MAX_INSTANCES; i++) {
    if (instances[i].key == key) {
      found = &instances[i];
      break;
    }
  }
  pthread_mutex_unlock(&instances_lock);
  return found;
}

/* -1: no selection (KVRELAY_GPU unset or empty); -2: not a number (reported once). */
static long selected_index(void) {
  const char *s = getenv("KVRELAY_GPU");
  if (!s || !*s) return -1;
  char *end = NULL;
  long n = strtol(s, &end, 10);
  if (*end || n < 0 || n > 1023) {
    if (!said_bad_index++) fprintf(stderr, "[kvrelay gpu-select] KVRELAY_GPU='%s' is not a device index: no device shown\n", s);
    return -2;
  }
  return n;
}

struct ranked_device {
  VkPhysicalDevice device;
  int has_pci;
  uint32_t vendor;
  uint64_t pci; /* domain:bus:device.function packed, for ordering */
  uint32_t position; /* the driver's order */
  char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
};

static int has_pci_bus_info(const struct instance_entry *e, VkPhysicalDevice d) {
  uint32_t count = 0;
  if (!e->device_extensions || e->device_extensions(d, NULL, &count, NULL) != VK_SUCCESS || !count) return 0;
  VkExtensionProperties *ext = calloc(count, sizeof *ext);
  int found = 0;
  if (ext && e->device_extensions(d, NULL, &count, ext) == VK_SUCCESS) {
    for (uint32_t i = 0; i < count && !found; i++) {
      found = strcmp(ext[i].extensionName, VK_EXT_PCI_BUS_INFO_EXTENSION_NAME) == 0;
    }
  }
  free(ext);
  return found;
}

static void describe(const struct instance_entry *e, struct ranked_device *r) {
  VkPhysicalDeviceProperties p;
  memset(&p, 0, sizeof p);
  if (e->properties2 && has_pci_bus_info(e, r->device)) {
    VkPhysicalDevicePCIBusInfoPropertiesEXT pci = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &pci};
    e->properties2(r->device, &p2);
    p = p2.properties;
    r->has_pci = 1;
    r->pci = ((uint64_t)pci.pciDomain << 24) | ((uint64_t)(pci.pciBus & 0xff) << 16) |
             ((uint64_t)(pci.pciDevice & 0xff) << 8) | (pci.pciFunction & 0xff);
  } else if (e->properties) {
    e->properties(r->device, &p);
  }
  r->vendor = p.vendorID;
  memcpy(r->name, p.deviceName, sizeof r->name);
  r->name[sizeof r->name - 1] = 0;
}

#define NVIDIA 0x10de

/* 0: an NVIDIA GPU with a PCI address (nvidia-smi counts these), 1: another with one, 2: the rest. */
static int tier(const struct ranked_device *r) {
  return !r->has_pci ? 2 : r->vendor == NVIDIA ? 0 : 1;
}

static int by_rank(const void *a, const void *b) {
  const struct ranked_device *x = a, *y = b;
  if (tier(x) != tier(y)) return tier(x) < tier(y) ? -1 : 1;
  if (x->has_pci && x->pci != y->pci) return x->pci < y->pci ? -1 : 1;
  return x->position < y->position ? -1 : x->position > y->position;
}

/* The devices below this layer in rank order; NULL on failure (result says why). */
static struct ranked_device *ranked_devices(const struct instance_entry *e, uint32_t *count, VkResult *result) {
  *count = 0;
  *result = e->enumerate(e->instance, count, NULL);
  if (*result != VK_SUCCESS) return NULL;
  VkPhysicalDevice *all = calloc(*count ? *count : 1, sizeof *all);
  struct ranked_device *ranked = calloc(*count ? *count : 1, sizeof *ranked);
  if (!all || !ranked) {
    free(all);
    free(ranked);
    *result = VK_ERROR_OUT_OF_HOST_MEMORY;
    return NULL;
  }
  *result = e->enumerate(e->instance, count, all);
  if (*result != VK_SUCCESS && *result != VK_INCOMPLETE) {
    free(all);
    free(ranked);
    return NULL;
  }
  *result = VK_SUCCESS;
  for (uint32_t i = 0; i < *count; i++) {
    ranked[i].device = all[i];
    ranked[i].position = i;
    describe(e, &ranked[i]);
  }
  free(all);
  qsort(ranked, *count, sizeof *ranked, by_rank);
  const char *list = getenv("KVRELAY_GPU_SELECT_LIST"); // 1 or true lists, as the config reads it
  if (list && (!strcmp(list, "1") || !strcmp(list, "true")) && !said_list++) {
    for (uint32_t i = 0; i < *count; i++) {
      const struct ranked_device *r = &ranked[i];
      if (r->has_pci) {
        fprintf(stderr, "[kvrelay gpu-select] %u: %s (pci %04x:%02x:%02x.%x)\n", i, r->name,
                (unsigned)(r->pci >> 24), (unsigned)(r->pci >> 16) & 0xff, (unsigned)(r->pci >> 8) & 0xff,
                (unsigned)r->pci & 0xff);
      } else {
        fprintf(stderr, "[kvrelay gpu-select] %u: %s (no pci address)\n", i, r->name);
      }
    }
  }
  return ranked;
}

/* The device KVRELAY_GPU names, or NULL for none; *all is set when there is no selection. */
static VkPhysicalDevice chosen_device(const struct instance_entry *e, int *all, VkResult *result) {
  long want = selected_index();
  *all = want == -1;
  *result = VK_SUCCESS;
  if (*all || want == -2) return NULL;
  uint32_t count = 0;
  struct ranked_device *ranked = ranked_devices(e, &count, result);
  if (!ranked) return NULL;
  VkPhysicalDevice chosen = NULL;
  if ((uint32_t)want < count) {
    chosen = ranked[want].device;
  } else if (!said_no_device++) {
    fprintf(stderr, "[kvrelay gpu-select] KVRELAY_GPU=%ld, but there are %u devices: none shown\n", want, count);
  }
  free(ranked);
  return chosen;
}

/*
 * The Vulkan two-call idiom for a list of `n` (0 or 1) entries: a count query, a too-small array
 * (VK_INCOMPLETE), or room for it; *write says whether to write the entry.
 */
static VkResult one_or_none(uint32_t n, uint32_t *pCount, int have_array, int *write) {
  *write = 0;
  if (!have_array) {
    *pCount = n;
    return VK_SUCCESS;
  }
  if (*pCount < n) {
    *pCount = 0;
    return VK_INCOMPLETE;
  }
  *write = n == 1;
  *pCount = n;
  return VK_SUCCESS;
}

static VKAPI_ATTR VkResult VKAPI_CALL select_EnumeratePhysicalDevices(VkInstance instance, uint32_t *pCount,
                                                                      VkPhysicalDevice *pDevices) {
  struct instance_entry *e = find_instance(instance);
  if (!e) return VK_ERROR_INITIALIZATION_FAILED;
  int all = 0, write = 0;
  VkResult result;
  VkPhysicalDevice chosen = chosen_device(e, &all, &result);
  if (all) return e->enumerate(instance, pCount, pDevices);
  if (result != VK_SUCCESS) return result;
  result = one_or_none(chosen ? 1 : 0, pCount, pDevices != NULL, &write);
  if (write) pDevices[0] = chosen;
  return result;
}

static VKAPI_ATTR VkResult VKAPI_CALL select_EnumeratePhysicalDeviceGroups(VkInstance instance, uint32_t *pCount,
                                                                           VkPhysicalDeviceGroupProperties *pGroups) {
  struct instance_entry *e = find_instance(instance);
  if (!e || !e->enumerate_groups) return VK_ERROR_INITIALIZATION_FAILED;
  int all = 0, write = 0;
  VkResult result;
  VkPhysicalDevice chosen = chosen_device(e, &all, &result);
  if (all) return e->enumerate_groups(instance, pCount, pGroups);
  if (result != VK_SUCCESS) return result;
  result = one_or_none(chosen ? 1 : 0, pCount, pGroups != NULL, &write);
  if (write) { /* the chosen device as a group of its own, in the caller's struct (its sType and pNext kept) */
    pGroups[0].physicalDeviceCount = 1;
    memset(pGroups[0].physicalDevices, 0, sizeof pGroups[0].physicalDevices);
    pGroups[0].physicalDevices[0] = chosen;
    pGroups[0].subsetAllocation = VK_FALSE;
  }
  return result;
}

static VKAPI_ATTR VkResult VKAPI_CALL select_CreateInstance(const VkInstanceCreateInfo *pCreateInfo,
                                                            const VkAllocationCallbacks *pAllocator,
                                                            VkInstance *pInstance) {
  VkLayerInstanceCreateInfo *link = (VkLayerInstanceCreateInfo *)pCreateInfo->pNext;
  while (link && !(link->sType == VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO && link->function == VK_LAYER_LINK_INFO)) {
    link = (VkLayerInstanceCreateInfo *)link->pNext;
  }
  if (!link || !link->u.pLayerInfo) return VK_ERROR_INITIALIZATION_FAILED;
  PFN_vkGetInstanceProcAddr next_gipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
  PFN_GetPhysicalDeviceProcAddr next_gpdpa = link->u.pLayerInfo->pfnNextGetPhysicalDeviceProcAddr;
  link->u.pLayerInfo = link->u.pLayerInfo->pNext; /* the next layer takes the next link */
  PFN_vkCreateInstance create = (PFN_vkCreateInstance)next_gipa(NULL, "vkCreateInstance");
  if (!create) return VK_ERROR_INITIALIZATION_FAILED;
  VkResult result = create(pCreateInfo, pAllocator, pInstance);
  if (result != VK_SUCCESS) return result;

  struct instance_entry e = {
      .key = dispatch_key(*pInstance),
      .instance = *pInstance,
      .next_gipa = next_gipa,
      .next_gpdpa = next_gpdpa,
      .destroy = (PFN_vkDestroyInstance)next_gipa(*pInstance, "vkDestroyInstance"),
      .enumerate = (PFN_vkEnumeratePhysicalDevices)next_gipa(*pInstance, "vkEnumeratePhysicalDevices"),
      .enumerate_groups = (PFN_vkEnumeratePhysicalDeviceGroups)next_gipa(*pInstance, "vkEnumeratePhysicalDeviceGroups"),
      .device_extensions =
          (PFN_vkEnumerateDeviceExtensionProperties)next_gipa(*pInstance, "vkEnumerateDeviceExtensionProperties"),
      .properties = (PFN_vkGetPhysicalDeviceProperties)next_gipa(*pInstance, "vkGetPhysicalDeviceProperties"),
      .properties2 = (PFN_vkGetPhysicalDeviceProperties2)next_gipa(*pInstance, "vkGetPhysicalDeviceProperties2"),
  };
  if (!e.enumerate_groups) {
    e.enumerate_groups = (PFN_vkEnumeratePhysicalDeviceGroups)next_gipa(*pInstance, "vkEnumeratePhysicalDeviceGroupsKHR");
  }
  if (!e.properties2) {
    e.properties2 = (PFN_vkGetPhysicalDeviceProperties2)next_gipa(*pInstance, "vkGetPhysicalDeviceProperties2KHR");
  }
  int stored = 0;
  pthread_mutex_lock(&instances_lock);
  for (int i = 0; i < MAX_INSTANCES && !stored; i++) {
    if (!instances[i].key) {
      instances[i] = e;
      stored = 1;
    }
  }
  pthread_mutex_unlock(&instances_lock);
  if (!stored) {
    if (e.destroy) e.destroy(*pInstance, pAllocator);
    return VK_ERROR_INITIALIZATION_FAILED;
  }
  return VK_SUCCESS;
}

static VKAPI_ATTR void VKAPI_CALL select_DestroyInstance(VkInstance instance, const VkAllocationCallbacks *pAllocator) {
  if (!instance) return;
  struct instance_entry *e = find_instance(instance);
  if (!e) return;
  PFN_vkDestroyInstance destroy = e->destroy;
  pthread_mutex_lock(&instances_lock);
  memset(e, 0, sizeof *e);
  pthread_mutex_unlock(&instances_lock);
  if (destroy) destroy(instance, pAllocator);
}

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL select_GetInstanceProcAddr(VkInstance instance, const char *name);

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL select_GetPhysicalDeviceProcAddr(VkInstance instance, const char *name) {
  struct instance_entry *e = instance ? find_instance(instance) : NULL;
  return e && e->next_gpdpa ? e->next_gpdpa(instance, name) : NULL;
}

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL select_GetInstanceProcAddr(VkInstance instance, const char *name) {
  if (!strcmp(name, "vkGetInstanceProcAddr")) return (PFN_vkVoidFunction)select_GetInstanceProcAddr;
  if (!strcmp(name, "vkCreateInstance")) return (PFN_vkVoidFunction)select_CreateInstance;
  if (!strcmp(name, "vkDestroyInstance")) return (PFN_vkVoidFunction)select_DestroyInstance;
  if (!strcmp(name, "vkEnumeratePhysicalDevices")) return (PFN_vkVoidFunction)select_EnumeratePhysicalDevices;
  if (!strcmp(name, "vkEnumeratePhysicalDeviceGroups") || !strcmp(name, "vkEnumeratePhysicalDeviceGroupsKHR")) {
    return (PFN_vkVoidFunction)select_EnumeratePhysicalDeviceGroups;
  }
  struct instance_entry *e = instance ? find_instance(instance) : NULL;
  return e ? e->next_gipa(instance, name) : NULL;
}

LAYER_EXPORT VKAPI_ATTR VkResult VKAPI_CALL vkNegotiateLoaderLayerInterfaceVersion(VkNegotiateLayerInterface *v) {
  if (!v || v->sType != LAYER_NEGOTIATE_INTERFACE_STRUCT || v->loaderLayerInterfaceVersion < 2) {
    return VK_ERROR_INITIALIZATION_FAILED;
  }
  v->loaderLayerInterfaceVersion = 2;
  v->pfnGetInstanceProcAddr = select_GetInstanceProcAddr;
  v->pfnGetDeviceProcAddr = NULL; /* not in any device's chain */
  v->pfnGetPhysicalDeviceProcAddr = select_GetPhysicalDeviceProcAddr;
  return VK_SUCCESS;
}
